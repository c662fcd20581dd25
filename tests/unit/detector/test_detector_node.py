"""Node provider: package managers, versions, frameworks, ports and start commands."""

from __future__ import annotations

import pytest

from services.builder.dockerfile import render_dockerfile
from services.detector.providers.node import is_dev_command, port_in_js
from services.detector.providers.node.package_manager import node_major, workspace_globs
from services.detector.service import detect
from shared.source import SourceTree

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("lock", "pm"), [
    ("bun.lockb", "bun"), ("bun.lock", "bun"), ("pnpm-lock.yaml", "pnpm"), ("yarn.lock", "yarn"),
    ("package-lock.json", "npm"),
])
def test_node_package_manager_from_lockfile(repo, lock: str, pm: str) -> None:
    assert detect(repo({"package.json": {"name": "a"}, lock: "x"})).package_manager == pm


def test_node_package_manager_field_wins_over_lockfile(repo) -> None:
    root = repo({"package.json": {"name": "a", "packageManager": "pnpm@9.1.0"}, "package-lock.json": "{}"})
    assert detect(root).package_manager == "pnpm"


@pytest.mark.parametrize(("spec", "major"), [
    ("20.11.1", "20"), ("v18", "18"), (">=18.17.0", "18"), ("lts/iron", "20"), ("^22", "22"), ("20.x", "20"),
])
def test_node_major_from_version_specs(spec: str, major: str) -> None:
    assert node_major(spec) == major


@pytest.mark.parametrize(("files", "tool"), [
    # nrwl/nx-recipes' pnpm workspace has a 5.3 lockfile, which pnpm 9 refuses (ERR_PNPM_LOCKFILE_BREAKING_CHANGE).
    ({"pnpm-lock.yaml": "lockfileVersion: 5.3\n"}, "pnpm@7"),
    ({"pnpm-lock.yaml": "lockfileVersion: 5.4\n" + "# a big lockfile\n" * 80_000}, "pnpm@7"),  # > 1 MB
    ({"pnpm-lock.yaml": "lockfileVersion: '6.0'\n"}, "pnpm@8"),
    ({"pnpm-lock.yaml": "lockfileVersion: '9.0'\n"}, "pnpm@9"),
    ({"pnpm-lock.yaml": "garbage"}, "pnpm@9"),
    ({"pnpm-lock.yaml": "lockfileVersion: 5.3\n", "packageManager": "pnpm@8.6.0"}, "pnpm@8"),
    ({"pnpm-lock.yaml": "lockfileVersion: 5.3\n", "packageManager": "pnpm@6.35.1"}, "pnpm@7"),  # 6: not on Node 20
    ({"bun.lockb": "x"}, "bun@1"),
    ({"package-lock.json": "{}"}, ""),
])
def test_the_package_manager_installed_is_the_one_the_lockfile_needs(repo, files: dict, tool: str) -> None:
    package = {"name": "a", "scripts": {"start": "node server.js"}}
    if "packageManager" in files:
        package["packageManager"] = files.pop("packageManager")
    plan = detect(repo({"package.json": package, **files})).plan
    assert plan is not None and plan.build_tool == tool


def test_node_nvmrc_wins_over_engines(repo) -> None:
    root = repo({"package.json": {"engines": {"node": ">=16"}}, ".nvmrc": "22\n"})
    assert detect(root).runtime_version == "22"


@pytest.mark.parametrize(("code", "port"), [
    ("const port = process.env.PORT || 4000;", 4000),
    ("app.listen(process.env.PORT ?? 5000)", 5000),
    ("server.listen(8081, () => {})", 8081),
    ("await fastify.listen({ port: 3005, host: '0.0.0.0' })", 3005),
    ("const PORT = parseInt(process.env.PORT, 10) || 7070", 7070),
    ("app.listen(port)", None),
])
def test_node_port_in_code(code: str, port: int | None) -> None:
    assert port_in_js(code) == port


@pytest.mark.parametrize(("cmd", "dev"), [
    ("nodemon server.js", True), ("vite", True), ("react-scripts start", True), ("node server.js", False),
    ("next start", False), ("NODE_ENV=production node dist/main.js", False),
])
def test_node_is_dev_command(cmd: str, dev: bool) -> None:
    assert is_dev_command(cmd) is dev


def test_node_dev_start_script_falls_back_to_entry_file(repo) -> None:
    root = repo({"package.json": {"scripts": {"start": "nodemon server.js"}, "dependencies": {"express": "4"}},
                 "server.js": "app.listen(3000)"})
    assert detect(root).start_command == "node server.js"


def test_node_start_script_port_flag(repo) -> None:
    root = repo({"package.json": {"scripts": {"start": "next start -p 4100"}, "dependencies": {"next": "14"}}})
    assert detect(root).internal_port == 4100


def test_node_spa_has_no_start_command_but_an_output_dir(repo) -> None:
    det = detect(repo({"package.json": {"scripts": {"build": "vite build"}, "devDependencies": {"vite": "5"}},
                       "index.html": "<div id=app></div>"}))
    assert (det.framework, det.output_dir, det.start_command, det.internal_port) == ("vite", "dist", None, 80)
    assert det.start_command_help is None


def test_node_prisma_provider_sets_database(repo) -> None:
    root = repo({"package.json": {"dependencies": {"@prisma/client": "5"}},
                 "prisma/schema.prisma": 'datasource db {\n  provider = "sqlite"\n  url = "file:dev.db"\n}\n'})
    assert detect(root).detected_db == "sqlite"


def test_node_missing_start_gives_help(repo) -> None:
    det = detect(repo({"package.json": {"name": "lib", "dependencies": {"lodash": "4"}}}))
    assert det.start_command is None
    assert det.start_command_help and '"start"' in det.start_command_help


@pytest.mark.parametrize(("lock", "prune"), [
    ("package-lock.json", "npm prune --omit=dev --no-audit --no-fund"),
    ("pnpm-lock.yaml", "pnpm prune --prod"),
    ("yarn.lock", "yarn install --frozen-lockfile --production --offline && yarn cache clean"),
])
def test_an_app_with_a_build_gets_its_production_dependencies_by_pruning_not_a_second_download(
    repo, lock: str, prune: str,
) -> None:
    # render-examples/create-react-app and the Nuxt apps went past 15 minutes here installing everything twice.
    package = {"name": "a", "scripts": {"build": "tsc", "start": "node dist/server.js"},
               "devDependencies": {"typescript": "5.6.3"}}
    plan = detect(repo({"package.json": package, lock: "lockfileVersion: '9.0'\n" if "pnpm" in lock else "{}"})).plan
    assert plan is not None and plan.prod_install == prune
    assert "yarn cache clean" not in plan.install  # the offline prune needs the cache the full install filled
    text = render_dockerfile(plan)
    assert f"FROM deps AS prod-deps\nRUN {prune} \\\n" in text


@pytest.mark.parametrize(("code", "start"), [
    # render-examples/fastify-hello-world: localhost unless RENDER is set, so unreachable from outside a container.
    ("const host = ('RENDER' in process.env) ? `0.0.0.0` : `localhost`;", "env RENDER=true node app.js"),
    ("app.listen(3000, process.env.FLY_APP_NAME ? '0.0.0.0' : '127.0.0.1')", "env FLY_APP_NAME=true node app.js"),
    ("const h = process.env['ON_PLATFORM'] ? \"::\" : 'localhost'", "env ON_PLATFORM=true node app.js"),
    ("const host = process.env.HOST ? process.env.HOST : '0.0.0.0'", "node app.js"),
    ("const host = process.env.HOST ? '0.0.0.0' : 'localhost'", "node app.js"),  # HOST=0.0.0.0 is set anyway
    ("server.listen(3000)", "node app.js"),
])
def test_a_host_chosen_by_a_platform_variable_gets_that_variable(repo, code: str, start: str) -> None:
    root = repo({"package.json": {"name": "a", "scripts": {"start": "node app.js"}}, "app.js": code})
    plan = detect(root).plan
    assert plan is not None and plan.start_command == start
    assert (plan.cmd_json.startswith('["env"')) is start.startswith("env ")


def test_workspace_packages_the_app_needs_are_built_first_dependencies_before_dependents(repo) -> None:
    # nrwl/nx-recipes: shared-ui's `main` is dist/index.js (tsc), which remix's own build never makes.
    root = repo({
        "package.json": {"name": "ws", "private": True, "workspaces": ["apps/*", "packages/*"]},
        "apps/web/package.json": {"name": "web", "scripts": {"build": "vite build", "start": "node server.js"},
                                  "dependencies": {"ui": "*", "react": "18.3.1", "evil": "*"}},
        "packages/ui/package.json": {"name": "ui", "main": "dist/index.js", "scripts": {"build": "tsc"},
                                     "dependencies": {"tokens": "*"}},
        "packages/tokens/package.json": {"name": "tokens", "scripts": {"build": "tsup index.ts"}},
        "packages/plain/package.json": {"name": "plain"},  # not a dependency of web, no build
        "packages/bad name;rm -rf/package.json": {"name": "evil", "scripts": {"build": "x"}},
    })
    plan = detect(root, "apps/web").plan
    assert plan is not None and plan.build_command == (
        "npm --prefix ../../packages/tokens run build && npm --prefix ../../packages/ui run build && npm run build")
    assert any("built first: evil, tokens, ui" in n for n in plan.notes)
    assert any("'packages/bad name;rm -rf' is not built first" in n for n in plan.notes)


def test_workspace_members_are_read_from_every_manifest_and_only_from_their_packages_lists(repo) -> None:
    # pnpm-workspace.yaml holds other lists too (onlyBuiltDependencies): their items are not member globs.
    root = repo({
        "package.json": {"name": "ws", "private": True, "workspaces": {"packages": ["./apps/*/", "!apps/old"]}},
        "pnpm-workspace.yaml": "packages:\n  - 'packages/*'\n  - apps/*\nonlyBuiltDependencies:\n  - esbuild\n",
        "lerna.json": {"packages": ["tools/*"]},
    })
    assert workspace_globs(SourceTree(root)) == ["apps/*", "packages/*", "tools/*"]
    # Lerna's packages are apps to find, not members a package manager installs at the root.
    assert workspace_globs(SourceTree(root), lerna=False) == ["apps/*", "packages/*"]


def test_an_app_with_no_lockfile_and_no_node_version_gets_the_lts_todays_releases_target(repo) -> None:
    # render-examples/nuxtjs-hello-world asks for nuxt@latest: Nuxt 4's build needs Node 22 (Set.difference).
    unpinned = detect(repo({"package.json": {"name": "a", "dependencies": {"nuxt": "latest"},
                                             "scripts": {"build": "nuxt build", "start": "nuxt start"}}})).plan
    assert unpinned is not None and unpinned.version == "22"
    locked = detect(repo({"package.json": {"name": "a", "scripts": {"start": "node server.js"}},
                          "package-lock.json": "{}"})).plan
    pinned = detect(repo({"package.json": {"name": "a", "scripts": {"start": "node server.js"}},
                          ".nvmrc": "18\n"})).plan
    assert locked is not None and locked.version == "20"
    assert pinned is not None and pinned.version == "18"


@pytest.mark.parametrize(("config", "output"), [
    # render-examples/nextjs-hello-world: the export is commented out, so `next start` serves it (no out/).
    ('const nextConfig = {\n  // output: "export",\n  reactStrictMode: true,\n};\nexport default nextConfig;\n', None),
    ('const nextConfig = {\n  /* output: "export", */\n};\nexport default nextConfig;\n', None),
    ('const nextConfig = {\n  output: "export", // static\n  assetPrefix: "https://cdn.example.com",\n};\n', "out"),
])
def test_a_commented_out_next_export_is_not_a_static_export(repo, config: str, output: str | None) -> None:
    root = repo({"package.json": {"name": "a", "dependencies": {"next": "15.0.3"},
                                  "scripts": {"build": "next build", "start": "next start"}},
                 "next.config.mjs": config})
    assert detect(root).output_dir == output
