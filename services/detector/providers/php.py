"""PHP: composer.json, Laravel, Symfony, WordPress, Slim and plain PHP sites."""

from __future__ import annotations

import re
from typing import Any

from services.detector.providers.base import (
    W_ENTRYPOINT,
    W_FRAMEWORK,
    W_LOCKFILE,
    W_MANIFEST,
    W_VERSION,
    as_dict,
    note,
)
from services.detector.providers.common import add_service
from services.detector.providers.node.plan import NODE_LOCKFILES, node_install
from shared.detection import Detection
from shared.plan import DEFAULT_VERSIONS, BuildPlan, image_version, major_minor, serving_port
from shared.source import SourceTree

PORT = 8000  # php's built-in server / artisan serve, bound by the start command below
FRAMEWORKS = (
    ("laravel/framework", "laravel"), ("laravel/lumen-framework", "lumen"), ("symfony/framework-bundle", "symfony"),
    ("roots/wordpress", "wordpress"), ("johnpbloch/wordpress", "wordpress"), ("johnpbloch/wordpress-core", "wordpress"),
    ("cakephp/cakephp", "cakephp"), ("codeigniter4/framework", "codeigniter"), ("yiisoft/yii2", "yii"),
    ("slim/slim", "slim"), ("laminas/laminas-mvc", "laminas"), ("drupal/core", "drupal"),
    ("drupal/core-recommended", "drupal"), ("statamic/cms", "statamic"),
)
DEP_SERVICES = {"predis/predis": "redis", "mongodb/mongodb": "mongodb", "mongodb/laravel-mongodb": "mongodb",
                "jenssegers/mongodb": "mongodb", "php-amqplib/php-amqplib": "rabbitmq"}


class PhpProvider:
    name = "php"

    def detect(self, src: SourceTree) -> bool:
        return src.has_file("composer.json") or src.has_file("index.php") or src.has_file("wp-config.php") or \
            src.has_file("public/index.php") or src.has_file("wp-config-sample.php")

    def analyze(self, src: SourceTree) -> Detection:
        det = Detection(stack="php")
        composer: dict[str, Any] = {}
        if src.has_file("composer.json"):
            data = src.read_json("composer.json")
            composer = data if isinstance(data, dict) else {}
            det.package_manager = "composer"
            note(det, "composer.json", "composer.json declares a PHP project", W_MANIFEST if composer else 20)
            if src.has_file("composer.lock"):
                note(det, "composer.lock", "composer.lock pins the dependencies", W_LOCKFILE)
        else:
            note(det, "index.php", "PHP entry point without composer.json", W_MANIFEST // 2 + 10)
        require = {**as_dict(composer.get("require-dev")), **as_dict(composer.get("require"))}
        php = as_dict(composer.get("require")).get("php") or \
            as_dict(as_dict(composer.get("config")).get("platform")).get("php")
        if isinstance(php, str):
            m = re.search(r"(\d+\.\d+)", php)
            if m:
                det.runtime_version = m.group(1)
                note(det, "composer.json", f"require.php is {php}", W_VERSION)
        for dep, fw in FRAMEWORKS:
            if dep in require:
                det.framework = fw
                note(det, "composer.json", f"requires {dep}", W_FRAMEWORK)
                break
        if det.framework is None and (src.has_file("wp-config.php") or src.has_file("wp-config-sample.php")
                                      or src.has_dir("wp-content")):
            det.framework = "wordpress"
            note(det, "wp-content", "WordPress files (wp-config, wp-content)", W_FRAMEWORK)
        for dep, service in DEP_SERVICES.items():
            if dep in require:
                add_service(det, service, "composer.json", f"requires {dep}")
        if det.framework == "wordpress":
            add_service(det, "mysql", "wp-config", "WordPress needs MySQL")
        det.internal_port = PORT
        docroot = "public" if src.has_file("public/index.php") else "web" if src.has_file("web/index.php") \
            else "."
        if det.framework == "laravel" and src.has_file("artisan"):
            det.start_command = f"php artisan serve --host=0.0.0.0 --port={PORT}"
            note(det, "artisan", "Laravel's artisan serves the app", W_ENTRYPOINT)
        elif det.framework == "symfony" and src.has_file("bin/console") or docroot != "." or \
                src.has_file("index.php"):
            det.start_command = f"php -S 0.0.0.0:{PORT} -t {docroot}"
            note(det, f"{docroot}/index.php" if docroot != "." else "index.php", f"{docroot}/ is the web root",
                 W_ENTRYPOINT)
        pkg = src.read_json("package.json") if src.has_file("package.json") else None
        if isinstance(pkg, dict) and "build" in as_dict(pkg.get("scripts")):
            det.build_command = "npm run build"
            note(det, "package.json", "front-end assets are built with `npm run build`")
        if det.start_command is None:
            det.start_command_help = "No web root found: add public/index.php (or index.php) to serve the app."
        return det

    def plan(self, det: Detection, src: SourceTree) -> BuildPlan:
        """PHP's built-in server on the web root; Composer's lockfile installs first, npm builds the assets."""
        notes: list[str] = []
        version = image_version("php", major_minor(det.runtime_version, DEFAULT_VERSIONS["php"]), notes)
        port = serving_port("php", det.internal_port, False)
        composer = src.has_file("composer.json")
        locked = src.has_file("composer.lock")
        manifests = ["composer.json", *(["composer.lock"] if locked else [])] if composer else []
        start = det.start_command or f"php -S 0.0.0.0:{port} -t ."
        match = re.search(r"-t\s+(\S+)", start)
        docroot = match[1] if match else ("public" if src.has_dir("public") else ".")
        assets = bool(det.build_command) and src.has_file("package.json")
        node_locks = [f for f in NODE_LOCKFILES["npm"] if src.has_file(f)]
        notes.append("PHP's built-in server with PHP_CLI_SERVER_WORKERS workers; "
                     "for heavy traffic put php-fpm behind nginx.")
        return BuildPlan(
            "php", det.framework, "composer" if composer else "none", version, port,
            f"php -S 0.0.0.0:{port} -t {docroot}", det.build_command if assets else None, manifests,
            template="php/Dockerfile.j2", target=docroot, locked=locked,
            install=node_install("npm", bool(node_locks), production_only=False) if assets else "",
            artifact=" ".join(["package.json", *node_locks]) if assets else "", notes=notes,
        )
