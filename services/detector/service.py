"""Detection: which runtime builds and runs an app directory, and how, with the evidence for each decision.

`detect(root, app_path)` is pure: it reads files only through a SourceTree and never runs anything.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from services.detector import scoring
from services.detector.monorepo import _is_workspace_root, _runnable, _with_apps, find_apps
from services.detector.providers import common
from services.detector.providers.base import Provider, Unplannable, note
from services.detector.registry import PLANNERS, PROVIDERS
from shared.detection import Detection
from shared.plan import BuildPlan
from shared.source import SourceTree

log = logging.getLogger(__name__)


def detect(root: Path | str, app_path: str = "") -> Detection:
    """Detect the app at `root/app_path`; monorepos list their apps in `apps` and describe the primary one."""
    src = SourceTree(root, app_path)
    det = analyze_dir(src)
    # Look for apps below only when this directory is a workspace root or is not an app itself: a Flask app's
    # `app/` package or an Express app's `server/` folder are parts of the app, not more apps.
    if _is_workspace_root(src) or not _runnable(det) or det.stack in ("unknown", "docker"):
        apps = find_apps(src, analyze_dir)
        if apps:
            det = _with_apps(src, det, apps)
    det.app_path = src.app_path
    det.warnings = list(dict.fromkeys(src.warnings))
    return det


def _run(provider: Provider, src: SourceTree) -> Detection | None:
    try:
        if not provider.detect(src):
            return None
        return provider.analyze(src)
    except Exception as exc:  # a provider bug must not take detection down; the others still answer
        log.exception("provider %s failed on %s", provider.name, src.root)
        src.warnings.append(f"the {provider.name} provider failed ({type(exc).__name__}: {exc}); skipped")
        return None


def _choose(results: list[Detection]) -> tuple[Detection, list[Detection]]:
    """First match in provider order, unless it found nothing runnable and a later one did."""
    primary = next((d for d in results if _runnable(d)), results[0])
    return primary, [d for d in results if d is not primary]


def analyze_dir(src: SourceTree) -> Detection:
    results: list[Detection] = []
    for provider in PROVIDERS:
        # A fallback (naming a language by its files) only speaks when no real provider claimed the directory.
        if getattr(provider, "fallback", False) and results:
            break
        found = _run(provider, src)
        if found is not None and all(found.stack != r.stack for r in results):
            results.append(found)
    facts = common.docker_facts(src)
    if results:
        det, others = _choose(results)
        if det is not results[0]:
            note(det, ".", f"{results[0].stack} files are present too, but only {det.stack} has a runnable app")
        for other in others:
            det.alternatives.append(other.stack)
            # The user may generate for another stack found here; its own provider plans it, as for the primary.
            if (alt_plan := _plan(other, src)) is not None:
                det.alternative_plans[other.stack] = alt_plan
            # Another runtime that would start a server is a real ambiguity; an asset pipeline (a package.json
            # that only builds CSS/JS next to Rails or Laravel) is not.
            strong = other.start_command is not None
            note(det, other.evidence[0].file if other.evidence else ".",
                 f"{other.stack} also matches{' with a runnable app' if strong else ''}",
                 scoring.W_AMBIGUOUS if strong else scoring.W_AMBIGUOUS // 3)
    elif (procfile_stack := common.stack_from_procfile(src)) is not None:
        det = Detection(stack=procfile_stack)
        note(det, "Procfile", f"only a Procfile: its web process runs {procfile_stack}", 30)
    elif facts.dockerfile or facts.compose:
        det = Detection(stack="docker", internal_port=facts.compose_port)
        note(det, facts.dockerfile or facts.compose or ".",
             "no app source of its own: the Dockerfile/compose file defines the app", 60)
    else:
        det = Detection(stack="unknown")
        det.start_command_help = ("No runtime detected: add a manifest (package.json, requirements.txt, go.mod, ...) "
                                  "or a Dockerfile at the app root.")
    common.apply_docker(det, facts)
    common.apply_procfile(src, det)
    if facts.expose and det.output_dir is None:
        _apply_expose(det, facts)
    common.scan_env_examples(src, det)
    common.apply_readme(det, src)
    det.detected_db = common.pick_db(det.services)
    det.services = sorted(det.services, key=lambda s: common.DB_PRIORITY.index(s)
                          if s in common.DB_PRIORITY else 99)
    if det.start_command:
        det.start_command_help = None
    elif det.stack not in ("unknown", "docker") and det.output_dir is None:
        note(det, ".", "no start command found", scoring.W_NO_START)
    for bad in sorted(src.invalid):
        note(det, bad, f"{bad} could not be parsed", scoring.W_INVALID_MANIFEST)
    det.confidence = scoring.score(det)
    det.plan = _plan(det, src)
    return det


def _plan(det: Detection, src: SourceTree) -> BuildPlan | None:
    """The language's provider plans the finished detection (Procfile, EXPOSE and README already applied)."""
    planner = PLANNERS.get(det.stack)
    if planner is None:
        return None
    try:
        return planner.plan(det, src)
    except Unplannable as exc:
        det.start_command_help = str(exc)
        return None
    except Exception as exc:  # as in `_run`: a provider bug is a warning, and the builder says no plan was made
        log.exception("provider %s failed to plan %s", planner.name, src.root)
        src.warnings.append(f"the {planner.name} provider failed to plan the app ({type(exc).__name__}: {exc})")
        return None


def _apply_expose(det: Detection, facts: common.DockerFacts) -> None:
    old = det.internal_port
    if old == facts.expose:
        note(det, facts.dockerfile or "Dockerfile", f"the Dockerfile exposes {facts.expose} too")
        return
    det.internal_port = facts.expose
    note(det, facts.dockerfile or "Dockerfile", f"the Dockerfile exposes port {facts.expose}", 5)
    if old and det.start_command:
        det.start_command = re.sub(rf"(?<=[:= ]){old}\b", str(facts.expose), det.start_command)
