"""The Dockerfile reader against the Docker engine's own parser, on every Dockerfile of the public repositories
fetched into the local mirror (/work/.mirror or PORTSIDE_MIRROR; skipped when there is none). For each file the
engine's classic builder is asked to build it from an empty context: it prints `Step 1/N` after parsing, before
it fails on the missing base image, and N must equal the number of instructions our reader finds. BuildKit-only
`--link` is removed for the classic engine; files with heredocs (which the classic engine cannot parse) are
counted apart. Figures: bench/results/dockerfile_corpus.json."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import tarfile
from pathlib import Path

import docker

from shared.docker.dockerfile import parse_dockerfile

MIRROR = Path(os.environ.get("PORTSIDE_MIRROR", "/work/.mirror"))
RESULTS = Path(__file__).parent / "results" / "dockerfile_corpus.json"
STEP = re.compile(r"Step 1/(\d+) : ")


def corpus() -> list[tuple[str, str]]:
    files = []
    for repo in sorted(MIRROR.glob("*/repo")):
        names = subprocess.run(["git", "-C", str(repo), "ls-tree", "-r", "--name-only", "HEAD"],
                               capture_output=True, text=True, check=False).stdout.splitlines()
        for name in names:
            if re.search(r"(^|/)Dockerfile[^/]*$", name) and not name.endswith((".template", ".j2", ".tmpl")):
                text = subprocess.run(["git", "-C", str(repo), "show", f"HEAD:{name}"], capture_output=True,
                                      text=True, check=False).stdout
                files.append((f"{repo.parent.name}:{name}", text))
    return files


def engine_count(client: docker.DockerClient, text: str) -> int | None:
    data = text.replace("--link ", "").encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    try:
        for chunk in client.api.build(fileobj=buf, custom_context=True, decode=True, pull=False, rm=True, forcerm=True):
            match = STEP.match(chunk.get("stream", ""))
            if match:
                return int(match[1])
            if "error" in chunk:
                return None
    except docker.errors.APIError:
        return None
    return None


def main() -> None:
    files = corpus()
    if not files:
        print(f"no mirror at {MIRROR}: skipped")
        return
    client = docker.from_env(timeout=120)
    agree, disagree, heredoc, refused = 0, [], 0, []
    for name, text in files:
        ours = parse_dockerfile(text)
        if any(i.heredocs for i in ours.instructions):
            heredoc += 1
            continue
        theirs = engine_count(client, text)
        if theirs is None:
            refused.append(name)
        elif theirs == len(ours.instructions):
            agree += 1
        else:
            disagree.append(f"{name}: engine {theirs}, ours {len(ours.instructions)}")
    figures = {"files": len(files), "agree": agree, "disagree": disagree, "heredoc_files": heredoc,
               "engine_refused": refused}
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps({k: (len(v) if isinstance(v, list) else v) for k, v in figures.items()}))


if __name__ == "__main__":
    main()
