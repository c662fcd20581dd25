"""Node frameworks: which one, its default port, how it builds, and how it starts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Framework:
    id: str
    deps: tuple[str, ...]         # any of these dependencies marks the framework
    port: int | None = 3000       # what its production server listens on by default
    start: str | None = None      # the framework's own production start, when package.json has no `start`
    output_dir: str | None = None  # set for frameworks whose build is a static site served by a web server
    dev_scripts: tuple[str, ...] = ()  # `start` scripts that are dev servers, not production


# Most specific first: meta-frameworks (they depend on react/vue/vite too), then servers, then SPA builders
# (a full-stack repo with express + vite is an express app that also builds its client).
FRAMEWORKS: tuple[Framework, ...] = (
    Framework("next", ("next",), 3000, "next start"),
    Framework("nuxt", ("nuxt", "nuxt3", "nuxt-edge"), 3000, "node .output/server/index.mjs"),
    Framework("remix", ("@remix-run/node", "@remix-run/serve", "@remix-run/react", "@remix-run/dev"), 3000,
              "remix-serve ./build/server/index.js"),
    Framework("react-router", ("@react-router/dev", "@react-router/node", "@react-router/serve"), 3000,
              "react-router-serve ./build/server/index.js"),
    Framework("astro", ("astro",), 4321, "node ./dist/server/entry.mjs"),
    Framework("sveltekit", ("@sveltejs/kit",), 3000, "node build"),
    Framework("solidstart", ("@solidjs/start", "solid-start"), 3000, "node .output/server/index.mjs"),
    Framework("qwik", ("@builder.io/qwik-city",), 3000, None),
    Framework("gatsby", ("gatsby",), 80, None, "public", ("gatsby develop",)),
    Framework("docusaurus", ("@docusaurus/core",), 80, None, "build", ("docusaurus start",)),
    Framework("vitepress", ("vitepress",), 80, None, ".vitepress/dist"),
    Framework("strapi", ("@strapi/strapi",), 1337, "strapi start"),
    Framework("adonisjs", ("@adonisjs/core",), 3333, "node build/bin/server.js"),
    Framework("nestjs", ("@nestjs/core",), 3000, "node dist/main"),
    Framework("feathers", ("@feathersjs/feathers",), 3030, None),
    Framework("sails", ("sails",), 1337, "node app.js"),
    Framework("meteor", ("meteor-node-stubs",), 3000, None),
    Framework("express", ("express",), 3000),
    Framework("fastify", ("fastify",), 3000),
    Framework("koa", ("koa",), 3000),
    Framework("hono", ("hono",), 3000),
    Framework("hapi", ("@hapi/hapi", "hapi"), 3000),
    Framework("elysia", ("elysia",), 3000),
    Framework("restify", ("restify",), 8080),
    Framework("angular", ("@angular/core",), 80, None, "dist", ("ng serve",)),
    Framework("create-react-app", ("react-scripts",), 80, None, "build", ("react-scripts start",)),
    Framework("vue", ("@vue/cli-service",), 80, None, "dist", ("vue-cli-service serve",)),
    # A Vue SPA is "vue" whichever bundler builds it; React/Svelte/plain SPAs on Vite are "vite".
    Framework("vue", ("vue",), 80, None, "dist", ("vite",)),
    Framework("vite", ("vite",), 80, None, "dist", ("vite",)),
    Framework("parcel", ("parcel", "parcel-bundler"), 80, None, "dist", ("parcel",)),
    Framework("webpack", ("webpack-dev-server",), 80, None, "dist", ("webpack serve", "webpack-dev-server")),
)

# `start` scripts that run a dev server or a watcher, not the production app.
DEV_START_MARKERS = ("nodemon", "ts-node-dev", "tsx watch", "node --watch", "next dev", "vite", "react-scripts start",
                     "ng serve", "vue-cli-service serve", "gatsby develop", "webpack serve", "webpack-dev-server",
                     "parcel ", "nuxt dev", "remix dev", "astro dev", "docusaurus start", "nest start --watch",
                     "bun --watch", "bun --hot")


def find_framework(deps: dict[str, str]) -> tuple[Framework, str] | None:
    for fw in FRAMEWORKS:
        for dep in fw.deps:
            if dep in deps:
                return fw, dep
    return None
