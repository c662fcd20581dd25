"""Python frameworks: which one (from the dependencies), and how each is served: the server, its default
port and its start command."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PORT = 8000  # what the generated gunicorn/uvicorn command binds unless the code names a port

# Framework dependency -> framework id, most specific first: a Django app may list starlette, a FastAPI app
# lists starlette, a Dash app is a Flask app underneath.
FRAMEWORKS = (
    ("django", "django"), ("fastapi", "fastapi"), ("python-fasthtml", "fasthtml"), ("streamlit", "streamlit"),
    ("gradio", "gradio"),
    ("dash", "dash"), ("flask", "flask"), ("litestar", "litestar"), ("sanic", "sanic"), ("quart", "quart"),
    ("starlette", "starlette"), ("aiohttp", "aiohttp"), ("tornado", "tornado"), ("falcon", "falcon"),
    ("pyramid", "pyramid"), ("bottle", "bottle"), ("chainlit", "chainlit"),
)


@dataclass(frozen=True)
class Server:
    server: str  # what serves the app: gunicorn (WSGI), uvicorn (ASGI), the framework's CLI, or python itself
    port: int = DEFAULT_PORT  # what it listens on unless the code names a port
    # The start command, a template of {target}, {script} and {port}; None: _gunicorn / _uvicorn build it, or the
    # app's main file runs.
    start: str | None = None
    ctor: str | None = None  # how the code makes the app object (a regex of constructor names)
    factory: bool = False  # an app factory (`def create_app(`) counts as the app object too
    scripts: tuple[str, ...] = ()  # a script framework: the files that may be the app, in order


# Framework -> how it is served. A module-level `app = create_app()` (wsgi.py) is an app object too, and beats the
# factory itself. Falcon is served by uvicorn instead when the code uses falcon.asgi; django finds its WSGI module
# in its settings; streamlit, gradio and chainlit run a script.
SERVERS: dict[str, Server] = {
    "django": Server("gunicorn"),
    "flask": Server("gunicorn", ctor="Flask|create_app|make_app", factory=True),
    "dash": Server("gunicorn", ctor="Dash"),
    "bottle": Server("gunicorn", ctor="Bottle"),
    "pyramid": Server("gunicorn", ctor="Configurator"),
    "falcon": Server("gunicorn", ctor=r"App|API|asgi\.App"),
    "fastapi": Server("uvicorn", ctor="FastAPI|create_app|get_application|get_app|make_app", factory=True),
    "starlette": Server("uvicorn", ctor="Starlette", factory=True),
    "litestar": Server("uvicorn", ctor="Litestar", factory=True),
    "quart": Server("uvicorn", ctor="Quart", factory=True),
    "fasthtml": Server("uvicorn"),
    "sanic": Server("sanic", start="sanic {target} --host 0.0.0.0 --port {port}", ctor="Sanic"),
    # An app factory is served by aiohttp's own runner; an app object runs from the main file.
    "aiohttp": Server("aiohttp", start="python -m aiohttp.web -H 0.0.0.0 -P {port} {target}",
                      ctor=r"web\.Application|Application", factory=True),
    "tornado": Server("python", ctor=r"(?:tornado\.)?web\.Application|Application"),
    "streamlit": Server("streamlit", 8501, "streamlit run {script} --server.port {port} --server.address 0.0.0.0",
                        scripts=("streamlit_app.py", "app.py", "main.py", "Home.py", "Hello.py")),
    # Gradio's script launches the app itself, on the port its code names.
    "gradio": Server("python", 7860, "python {script}", scripts=("app.py", "main.py", "demo.py")),
    "chainlit": Server("chainlit", 8000, "chainlit run {script} --host 0.0.0.0 --port {port}",
                       scripts=("app.py", "main.py")),
}


def _gunicorn(target: str, port: int, chdir: str | None, worker: str | None = None) -> str:
    parts = ["gunicorn", "--bind", f"0.0.0.0:{port}"]
    if chdir:
        parts += ["--chdir", chdir]
    if worker:
        parts += ["-k", worker]
    # A factory target has parentheses, which a shell would parse: quote it.
    return " ".join([*parts, f"'{target}'" if "(" in target else target])


def _uvicorn(target: str, port: int, chdir: str | None) -> str:
    extra = f" --app-dir {chdir}" if chdir else ""
    if target.endswith("()"):  # an app factory: uvicorn calls it itself
        return f"uvicorn {target[:-2]} --factory --host 0.0.0.0 --port {port}{extra}"
    return f"uvicorn {target} --host 0.0.0.0 --port {port}{extra}"
