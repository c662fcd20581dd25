""".NET: *.csproj / *.fsproj / *.sln, ASP.NET Core, target framework and global.json."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from services.detector.providers.base import (
    W_ENTRYPOINT,
    W_FRAMEWORK,
    W_MANIFEST,
    W_VERSION,
    Unplannable,
    as_dict,
    note,
)
from services.detector.providers.common import add_service
from shared.detection import Detection
from shared.plan import DEFAULT_VERSIONS, BuildPlan, major_minor, serving_port
from shared.source import SourceTree

PKG_SERVICES = (
    ("Npgsql", "postgres"),
    ("Pomelo.EntityFrameworkCore.MySql", "mysql"),
    ("MySqlConnector", "mysql"),
    ("MySql.Data", "mysql"),
    ("StackExchange.Redis", "redis"),
    ("Microsoft.Extensions.Caching.StackExchangeRedis", "redis"),
    ("MongoDB.Driver", "mongodb"),
    ("Microsoft.EntityFrameworkCore.Sqlite", "sqlite"),
    ("Microsoft.Data.Sqlite", "sqlite"),
    ("RabbitMQ.Client", "rabbitmq"),
    ("MassTransit.RabbitMQ", "rabbitmq"),
)


# C#, F# and Visual Basic projects: `dotnet restore` and `dotnet publish` take any of them.
PROJECT_FILES = (".csproj", ".fsproj", ".vbproj")


class DotnetProvider:
    name = "dotnet"

    def _projects(self, src: SourceTree) -> list[str]:
        return [f for f in src.glob("**/*.*proj", max_depth=3)
                if f.endswith(PROJECT_FILES) and "test" not in f.lower()]

    def detect(self, src: SourceTree) -> bool:
        return bool(src.glob("*.sln", max_depth=0) or src.glob("*.csproj", max_depth=0) or
                    src.glob("*.fsproj", max_depth=0) or (src.has_file("global.json") and self._projects(src)))

    def analyze(self, src: SourceTree) -> Detection:
        det = Detection(stack="dotnet", package_manager="dotnet")
        projects = self._projects(src)
        texts = {p: src.read_text(p) or "" for p in projects[:20]}
        web = [p for p, t in texts.items() if re.search(r"Sdk=\"Microsoft\.NET\.Sdk\.(Web|Razor)\"", t)]
        wasm = [p for p, t in texts.items() if "Microsoft.NET.Sdk.BlazorWebAssembly" in t]
        exe = [p for p, t in texts.items() if "<OutputType>Exe</OutputType>" in t]
        chosen = next(iter(web or wasm or exe or projects), None)
        if chosen is None:
            sln = src.glob("*.sln", max_depth=0)
            note(det, sln[0] if sln else "global.json", "a .NET solution without a project file", W_MANIFEST // 2)
            det.start_command_help = "No .csproj found: add the web project to the solution directory."
            return det
        text = texts[chosen]
        note(det, chosen, f"{chosen} is the {'web ' if web else ''}project", W_MANIFEST)
        if src.has_file("packages.lock.json"):
            note(det, "packages.lock.json", "NuGet lockfile", 10)
        tf = re.search(r"<TargetFrameworks?>\s*net(?:coreapp)?(\d+\.\d+)", text)
        gj = src.read_json("global.json") if src.has_file("global.json") else None
        sdk = as_dict(as_dict(gj).get("sdk")).get("version")
        if tf:
            det.runtime_version = tf.group(1)
            note(det, chosen, f"targets net{tf.group(1)}", W_VERSION)
        elif isinstance(sdk, str):
            det.runtime_version = ".".join(sdk.split(".")[:2])
            note(det, "global.json", f"global.json pins SDK {sdk}", W_VERSION)
        for pkg, service in PKG_SERVICES:
            if any(f'Include="{pkg}' in t for t in texts.values()):
                add_service(det, service, chosen, f"references {pkg}")
        name = re.search(r"<AssemblyName>([^<]+)</AssemblyName>", text)
        assembly = name.group(1) if name else PurePosixPath(chosen).stem
        major = int(det.runtime_version.split(".")[0]) if det.runtime_version else 8
        if wasm and not web:
            det.framework = "blazor-wasm"
            det.build_command = f"dotnet publish {chosen} -c Release -o out"
            det.output_dir = "out/wwwroot"
            det.internal_port = 80
            note(det, chosen, "Blazor WebAssembly: a static site", W_FRAMEWORK)
            return det
        if web:
            det.framework = "aspnetcore"
            note(det, chosen, "uses the ASP.NET Core web SDK", W_FRAMEWORK)
        port = 8080 if major >= 8 else 80
        det.internal_port = port if web else None
        det.build_command = f"dotnet publish {chosen} -c Release -o out"
        det.start_command = f"dotnet out/{assembly}.dll" + (f" --urls http://0.0.0.0:{port}" if web else "")
        note(det, chosen, f"publishes {assembly}.dll", W_ENTRYPOINT)
        return det

    def plan(self, det: Detection, src: SourceTree) -> BuildPlan:
        """`dotnet publish` of the detected project after a restore that sees every project file; a console app
        (no web SDK, no port) listens on nothing."""
        version = major_minor(det.runtime_version, DEFAULT_VERSIONS["dotnet"])
        project = next((w for w in (det.build_command or "").split() if w.endswith(PROJECT_FILES)), "")
        every = sorted(p for p in src.glob("**/*.*proj") if p.endswith(PROJECT_FILES))
        if not project:
            found = [p for p in every if "test" not in PurePosixPath(p).name.lower()]
            if not found:
                # Detection's own sentence (a solution without a project names where to add it) is the better one.
                raise Unplannable(det.start_command_help or "No project file (.csproj) found; add the app's project, "
                                  "which Portside builds with `dotnet publish`.")
            project = found[0]
        # Every project file, so `dotnet restore` of the app's project sees its project references.
        manifests = list(every)
        manifests += [f for f in ("global.json", "nuget.config", "NuGet.Config", "Directory.Build.props",
                                  "Directory.Packages.props") if src.has_file(f)]
        dll = next((w for w in (det.start_command or "").split() if w.endswith(".dll")), "")
        dll = dll.rsplit("/", 1)[-1] or PurePosixPath(project).stem + ".dll"
        web = det.framework == "aspnetcore" or det.internal_port is not None
        static = det.output_dir is not None and not det.start_command
        port = serving_port("dotnet", det.internal_port, static)
        return BuildPlan("dotnet", det.framework, "dotnet", version, port if web else None, "", det.build_command,
                         manifests, template="dotnet/Dockerfile.j2", artifact=dll, target=project)
