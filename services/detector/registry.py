"""The detection providers, in the order that decides ties (services/detector/service.py runs them)."""

from __future__ import annotations

from typing import cast

from services.detector.providers.base import Planner, Provider
from services.detector.providers.deno import DenoProvider
from services.detector.providers.dotnet import DotnetProvider
from services.detector.providers.elixir import ElixirProvider
from services.detector.providers.go import GoProvider
from services.detector.providers.java import JavaProvider
from services.detector.providers.node import NodeProvider
from services.detector.providers.other import OtherLanguageProvider
from services.detector.providers.php import PhpProvider
from services.detector.providers.python import PythonProvider
from services.detector.providers.ruby import RubyProvider
from services.detector.providers.rust import RustProvider
from services.detector.providers.static import StaticProvider

# The registration order is the tie-break policy when several runtimes claim one directory.
# 1. Languages whose apps routinely carry a package.json only for front-end assets (Laravel + Vite, Rails +
#    jsbundling, Phoenix assets, Django/Flask + Tailwind, Spring/ASP.NET/Go servers with a web client) come
#    before Node. Each needs its own manifest, which a Node project never has by accident.
# 2. Deno before Node: a deno.json is deliberate, a package.json in a Deno repo is there for npm compatibility.
# 3. Node, then static HTML (index.html only counts when no runtime claims the directory: a Vite app has one).
# 4. Other languages last: named from a manifest or the dominant file extension, so nothing is "unknown"
#    when it has source code.
# On top of order, a later runtime wins only when the earlier one found nothing runnable (see `_choose` in service.py),
# which is how a Node app with a docs-only requirements.txt stays Node.
PROVIDERS: tuple[Provider, ...] = (
    PhpProvider(),
    RubyProvider(),
    ElixirProvider(),
    PythonProvider(),
    JavaProvider(),
    DotnetProvider(),
    GoProvider(),
    RustProvider(),
    DenoProvider(),
    NodeProvider(),
    StaticProvider(),
    OtherLanguageProvider(),
)

# The providers that state their language's build plan (shared/plan.py PLANNED_STACKS); the builder plans nothing.
PLANNERS: dict[str, Planner] = {p.name: cast(Planner, p) for p in PROVIDERS if hasattr(p, "plan")}
