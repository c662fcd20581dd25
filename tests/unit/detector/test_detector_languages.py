"""Go, Rust, Java, PHP, Ruby, Elixir, .NET, Deno, static and other-language providers."""

from __future__ import annotations

import pytest

from services.detector.providers.go import port_in_go, requires
from services.detector.providers.rust import port_in_rust
from services.detector.service import detect

pytestmark = pytest.mark.unit


def test_go_requires_reads_single_and_block_directives() -> None:
    gomod = "module x\n\ngo 1.22\n\nrequire github.com/a/b v1.0.0\n\nrequire (\n\tgithub.com/gin-gonic/gin v1.10.0\n" \
            "\tgolang.org/x/net v0.1.0 // indirect\n)\n"
    assert requires(gomod) == ["github.com/a/b", "github.com/gin-gonic/gin", "golang.org/x/net"]


@pytest.mark.parametrize(
    ("code", "port"),
    [
        ('r.Run(":8080")', 8080),
        ('http.ListenAndServe(":9001", mux)', 9001),
        ('e.Start(":1323")', 1323),
        ('port := os.Getenv("PORT")\nif port == "" {\n\tport = "7000"\n}', 7000),
        ('srv := &http.Server{Addr: ":8443"}', 8443),
    ],
)
def test_go_port_in_code(code: str, port: int) -> None:
    assert port_in_go(code) == port


def test_go_toolchain_wins_over_go_directive(repo) -> None:
    det = detect(repo({"go.mod": "module x\n\ngo 1.21\n\ntoolchain go1.22.4\n", "main.go": "package main\n"}))
    assert det.runtime_version == "1.22"


def test_go_without_main_package_gives_help(repo) -> None:
    det = detect(repo({"go.mod": "module lib\n\ngo 1.22\n", "lib.go": "package lib\n"}))
    assert det.start_command is None and det.start_command_help


@pytest.mark.parametrize(("code", "port"), [
    ('TcpListener::bind("0.0.0.0:3000")', 3000), ('.bind(("127.0.0.1", 8080))?', 8080),
    ("warp::serve(routes).run(([0, 0, 0, 0], 3030))", 3030),
])
def test_rust_port_in_code(code: str, port: int) -> None:
    assert port_in_rust(code) == port


def test_rust_workspace_without_package_has_no_binary(repo) -> None:
    det = detect(repo({"Cargo.toml": "[workspace]\nmembers = ['crates/*']\n"}))
    assert det.stack == "rust" and det.start_command is None


def test_java_gradle_kotlin_plain_build_uses_non_plain_jar(repo) -> None:
    det = detect(repo({"build.gradle.kts": 'plugins { kotlin("jvm") version "1.9.0" }\njvmToolchain(17)\n'}))
    assert det.stack == "java" and det.runtime_version == "17"
    assert det.start_command == "java -jar build/libs/*[!n].jar"


def test_java_spring_port_placeholder_default(repo) -> None:
    det = detect(repo({"pom.xml": "<project><artifactId>a</artifactId><version>1</version>"
                                  "<parent><groupId>org.springframework.boot</groupId></parent></project>",
                       "src/main/resources/application.properties": "server.port=${PORT:8181}\n"}))
    assert det.framework == "spring-boot" and det.internal_port == 8181


def test_php_laravel_sqlite_from_env_example(repo) -> None:
    det = detect(repo({"composer.json": {"require": {"laravel/framework": "^11.0"}}, "artisan": "",
                       ".env.example": "DB_CONNECTION=sqlite\n"}))
    assert det.framework == "laravel" and det.detected_db == "sqlite"


def test_ruby_gemfile_ruby_version(repo) -> None:
    det = detect(repo({"Gemfile": "source 'https://rubygems.org'\nruby '3.2.2'\ngem 'sinatra'\n",
                       "app.rb": "require 'sinatra'\nset :port, 4000\n"}))
    assert (det.runtime_version, det.internal_port, det.start_command) == ("3.2.2", 4000, "bundle exec ruby app.rb")


def test_ruby_rails_procfile_web_wins_over_default(repo) -> None:
    det = detect(repo({"Gemfile": "gem 'rails'\n", "Procfile": "web: bin/rails server -p $PORT\nworker: sidekiq\n"}))
    assert det.start_command == "bin/rails server -p $PORT"


def test_elixir_otp_app_without_web_has_no_port(repo) -> None:
    det = detect(repo({"mix.exs": "defp deps do\n  [{:jason, \"~> 1.4\"}]\nend\n"}))
    assert det.stack == "elixir" and det.internal_port is None


def test_dotnet_prefers_web_project_over_library(repo) -> None:
    det = detect(repo({"App.sln": "", "src/Lib/Lib.csproj": '<Project Sdk="Microsoft.NET.Sdk"></Project>',
                       "src/Web/Web.csproj": '<Project Sdk="Microsoft.NET.Sdk.Web"><PropertyGroup>'
                                            "<TargetFramework>net9.0</TargetFramework></PropertyGroup></Project>"}))
    assert det.framework == "aspnetcore" and det.runtime_version == "9.0"
    assert det.start_command == "dotnet out/Web.dll --urls http://0.0.0.0:8080"


def test_deno_jsonc_with_comments_is_parsed(repo) -> None:
    det = detect(repo({"deno.jsonc": '{\n  // tasks\n  "tasks": { "start": "deno run -A main.ts" },\n}\n',
                       "main.ts": "Deno.serve({ port: 8765 }, () => new Response('hi'))\n"}))
    assert det.stack == "deno" and det.start_command == "deno task start" and det.internal_port == 8765


def test_deno_config_wins_over_package_json(repo) -> None:
    det = detect(repo({"deno.json": {"tasks": {"start": "deno run main.ts"}}, "package.json": {"name": "x"}}))
    assert det.stack == "deno"
    assert "node" in det.alternatives


def test_static_plain_html(repo) -> None:
    det = detect(repo({"index.html": "<h1>hi</h1>", "style.css": ""}))
    assert (det.stack, det.output_dir, det.internal_port, det.start_command) == ("static", ".", 80, None)


def test_other_language_named_from_extension(repo) -> None:
    det = detect(repo({"src/Main.hs": "main = putStrLn \"hi\"", "src/Lib.hs": ""}))
    assert det.stack == "haskell"
    assert det.start_command_help
