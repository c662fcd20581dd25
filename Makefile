# Portside. The README's two commands are `make run` and `make test`; each installs what it needs first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORTSIDE := $(VENV)/bin/portside
# Base images the e2e tests and the quick start deploy onto (local stand-ins when no registry answers).
IMAGES ?=
PYTEST_ARGS ?=


.PHONY: install web test-web docker caddy images portside-image dind-image docs run test test-slow test-unit test-integration test-e2e lint bench clean-docker registry-gc help

help:
	@echo "make install   - create .venv with the portside command"
	@echo "make run       - install, make sure a Docker engine runs, build base images, start Portside"
	@echo "make test      - install, engine, base images, then the tests (unit, integration, e2e; not the slow ones)"
	@echo "make test-slow - the slow tests (more e2e builds, 50 concurrent deploys); CI runs them too"
	@echo "make bench     - benchmarks; figures go to bench/results/"
	@echo "make dind-image - the Docker-in-Docker node image of the two-node Swarm test (cached)"
	@echo "make lint      - ruff and mypy"
	@echo "make test-web  - the web page's component tests (Vitest; make test runs them first)"
	@echo "make registry-gc REGISTRY_CONFIG=... - Swarm: free the registry's disk after Portside deleted tags (on its machine)"

install: $(VENV)/.installed web

# The web page (services/web): `npm ci` from the committed lockfile, then the Vite build into services/web/dist,
# which the API serves at `/`. Rebuilt when the lockfile or any source file changes.
WEB := services/web
WEB_SRC := $(shell find $(WEB)/src $(WEB)/public $(WEB)/scripts -type f 2>/dev/null) $(WEB)/index.html $(WEB)/vite.config.ts $(WEB)/tsconfig.json

web: $(WEB)/dist/index.html

$(WEB)/node_modules/.package-lock.json: $(WEB)/package-lock.json
	@command -v npm >/dev/null || { echo "The web page needs Node.js 18+ and npm (apt-get install nodejs npm)"; exit 1; }
	cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error

$(WEB)/dist/index.html: $(WEB)/node_modules/.package-lock.json $(WEB_SRC)
	cd $(WEB) && npm run --silent build

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Portside needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

docker: install
	@bash scripts/ensure-docker.sh

images: docker
	@bash deploy/base-images/build.sh $(IMAGES)

# Portside's own image (deploy/compose.yaml runs it); the compose-stack test builds it itself, from this tree.
portside-image: docker
	@bash deploy/portside/build-image.sh

# Swarm: free the registry's disk after Portside deleted tags there (on the registry's machine; scripts/registry-gc.sh).
REGISTRY_CONFIG ?= /etc/docker/registry/config.yml
registry-gc:
	@bash scripts/registry-gc.sh $(REGISTRY_CONFIG)

# The Docker-in-Docker node image of the two-node Swarm test (Debian's docker.io; cached, rebuilt when
# deploy/dind/ changes). The test builds it itself too.
dind-image: docker
	@bash deploy/dind/build-image.sh

# The reverse proxy `portside up` starts (Debian's caddy; installed when missing).
caddy:
	@bash scripts/ensure-caddy.sh

run: images caddy
	$(PORTSIDE) up

# The default run leaves out tests marked slow (about 20 minutes on 2 cores); CI runs those too.
# The web page's component tests (Vitest) run first, so pytest's summary stays the last line.
# The Swarm tests push to Debian's docker-registry, started by the tests on a loopback port.
test: images caddy test-web
	@bash scripts/ensure-registry.sh
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-web: web
	cd $(WEB) && npx vitest run --reporter=dot

# The slow suite includes the web page's browser test: Debian's chromium first (installed when missing).
test-slow: images caddy dind-image
	@bash scripts/ensure-chromium.sh
	@bash scripts/ensure-registry.sh
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

test-unit: install
	$(PY) -m pytest -m unit $(PYTEST_ARGS)

test-integration: install caddy
	$(PY) -m pytest -m integration $(PYTEST_ARGS)

test-e2e: images caddy
	@bash scripts/ensure-registry.sh
	$(PY) -m pytest -m e2e $(PYTEST_ARGS)

# ruff (120-column lines included) on everything, mypy on shared/ and services/ (pyproject.toml has the settings).
lint: install
	$(VENV)/bin/ruff check shared services tests bench
	$(VENV)/bin/mypy

bench: images caddy
	$(PY) -m bench.run

# The OpenAPI and AsyncAPI documents and the README's message contract, checked in and compared by unit tests.
docs: install
	$(PY) -m services.api.openapi
	$(PY) -m services.asyncapi
	$(PY) -m shared.messaging.contract

# Remove everything Portside (or a crashed test) left on the engine, found by label.
clean-docker:
	-docker ps -aq --filter label=org.portside.managed | xargs -r docker rm -f
	-docker network ls -q --filter label=org.portside.managed | xargs -r docker network rm
	-docker volume ls -q --filter label=org.portside.managed | xargs -r docker volume rm
