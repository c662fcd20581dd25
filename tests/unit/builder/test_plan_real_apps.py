"""Plans for what real apps do: every base image a generated Dockerfile can name is one that `make images` builds
(deploy/base-images/build.sh), with the version it claims or the nearest newer line, said in a note; an engines
lower bound; Go without go.mod; SvelteKit's adapter-auto."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from services.builder.dockerfile import render_dockerfile
from services.builder.plan import plan_for
from services.detector.service import detect
from shared.docker.dockerfile import parse_dockerfile
from shared.plan import DEFAULT_VERSIONS, IMAGE_VERSIONS, image_version
from tests.conftest import FIXTURE_REPOS
from tests.support import ROOT
from tests.unit.builder.test_templates import GENERATED

BUILD_SH = ROOT / "deploy" / "base-images" / "build.sh"
# The stacks whose images `make images` can make from Debian or npm packages (the others need a registry).
LOCAL_STACKS = {"python", "node", "go", "php", "static"}


def make_images_tags() -> set[str]:
    match = re.search(r"^DEFAULT_TAGS=\(([^)]*)\)", BUILD_SH.read_text(), re.MULTILINE)
    assert match, "build.sh lists its DEFAULT_TAGS"
    return set(match[1].split())


def base_images(dockerfile: str) -> set[str]:
    parsed = parse_dockerfile(dockerfile)
    stages = set()
    images = set()
    for instruction in parsed.instructions:
        if instruction.keyword != "FROM":
            continue
        words = instruction.args.split()
        if words[0] not in stages:
            images.add(words[0])
        if len(words) >= 3 and words[1].upper() == "AS":
            stages.add(words[2])
    return images


# Hugo sites build in hugomods/hugo, which only a registry serves (Debian's hugo is not that image): left out.
LOCAL = [(name, plan) for name, plan in GENERATED if plan.stack in LOCAL_STACKS and plan.framework != "hugo"]


@pytest.mark.parametrize(("name", "plan"), LOCAL, ids=[n for n, _ in LOCAL])
def test_make_images_builds_every_base_image_a_plan_names(name: str, plan) -> None:  # type: ignore[no-untyped-def]
    missing = base_images(render_dockerfile(plan)) - make_images_tags()
    assert not missing, f"{name}: `make images` never builds {sorted(missing)}"


@pytest.mark.parametrize("stack", sorted(IMAGE_VERSIONS))
def test_every_line_a_plan_may_choose_is_built(stack: str) -> None:
    tags = make_images_tags()
    pattern = {"python": "python:{}-slim", "node": "node:{}-slim", "go": "golang:{}-bookworm", "php": "php:{}-cli"}
    for version in IMAGE_VERSIONS[stack]:
        assert pattern[stack].format(version) in tags
    assert DEFAULT_VERSIONS[stack] in IMAGE_VERSIONS[stack]


@pytest.mark.parametrize(("stack", "requested", "chosen"), [
    ("python", "3.8", "3.11"), ("python", "3.12", "3.12"), ("python", "3.14", "3.13"),
    ("node", "16", "18"), ("node", "19", "20"), ("node", "26", "24"), ("go", "1.21", "1.22"), ("php", "8.2", "8.4"),
])
def test_a_line_without_an_image_becomes_the_nearest_newer_one_and_says_so(stack, requested, chosen) -> None:  # type: ignore[no-untyped-def]
    notes: list[str] = []
    assert image_version(stack, requested, notes) == chosen
    assert bool(notes) == (requested != chosen)
    if notes:
        assert chosen in notes[0] and requested in notes[0]


def test_an_engines_lower_bound_gets_the_default_line_not_the_bound(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text(json.dumps(
        {"name": "x", "scripts": {"start": "node index.js"}, "engines": {"node": ">= 18"}}))
    (tmp_path / "index.js").write_text("require('http').createServer().listen(process.env.PORT)\n")
    plan = plan_for(detect(tmp_path))
    assert plan.version == DEFAULT_VERSIONS["node"]
    (tmp_path / "package.json").write_text(json.dumps(
        {"name": "x", "scripts": {"start": "node index.js"}, "engines": {"node": "18.x"}}))
    assert plan_for(detect(tmp_path)).version == "18"


def test_go_without_go_mod_gets_a_module_at_build_time() -> None:
    root = FIXTURE_REPOS / "go-no-go-mod"
    plan = plan_for(detect(root))
    dockerfile = render_dockerfile(plan)
    assert "RUN go mod init app" in dockerfile and "go mod download" not in dockerfile
    assert any("go.mod" in note for note in plan.notes)


def test_sveltekit_adapter_auto_builds_with_adapter_node() -> None:
    root = FIXTURE_REPOS / "node-sveltekit-adapter-auto"
    plan = plan_for(detect(root))
    assert plan.build_command and "@sveltejs/adapter-node" in plan.build_command
    assert plan.build_command.endswith("npm run build") and plan.start_command == "node build"
    explicit = FIXTURE_REPOS / "node-sveltekit"  # already on adapter-node: its build is left alone
    assert plan_for(detect(explicit)).build_command == "npm run build"
