"""JVM apps built with Maven or Gradle (Java and Kotlin): Spring Boot, Quarkus, Micronaut, Ktor, ..."""

from __future__ import annotations

import re

from services.detector.providers.base import (
    W_ENTRYPOINT,
    W_FRAMEWORK,
    W_LOCKFILE,
    W_MANIFEST,
    W_VERSION,
    note,
)
from services.detector.providers.common import add_service, services_from_text
from shared.detection import Detection
from shared.plan import DEFAULT_VERSIONS, BuildPlan, major_minor, serving_port
from shared.source import SourceTree

GRADLE_FILES = ("build.gradle.kts", "build.gradle")
# Artifact/plugin marker -> framework id, most specific first.
FRAMEWORKS = (
    ("org.springframework.boot", "spring-boot"), ("io.quarkus", "quarkus"), ("io.micronaut", "micronaut"),
    ("io.ktor", "ktor"), ("io.dropwizard", "dropwizard"), ("io.javalin", "javalin"), ("io.helidon", "helidon"),
    ("io.vertx", "vertx"), ("com.sparkjava", "spark"),
)
DEP_SERVICES = (
    ("org.postgresql", "postgres"), ("postgresql", "postgres"), ("r2dbc-postgresql", "postgres"),
    ("mysql-connector", "mysql"), ("com.mysql", "mysql"), ("mariadb-java-client", "mysql"),
    ("spring-boot-starter-data-mongodb", "mongodb"), ("mongodb-driver", "mongodb"), ("quarkus-mongodb", "mongodb"),
    ("spring-boot-starter-data-redis", "redis"), ("jedis", "redis"), ("lettuce-core", "redis"),
    ("quarkus-redis", "redis"), ("spring-boot-starter-amqp", "rabbitmq"), ("amqp-client", "rabbitmq"),
    ("sqlite-jdbc", "sqlite"), ("quarkus-jdbc-postgresql", "postgres"), ("quarkus-jdbc-mysql", "mysql"),
)
CONFIG_FILES = ("src/main/resources/application.properties", "src/main/resources/application.yml",
                "src/main/resources/application.yaml", "src/main/resources/application.conf")


def _tag(xml: str, tag: str) -> str | None:
    m = re.search(rf"<{tag}>\s*([^<\s]+)\s*</{tag}>", xml)
    return m.group(1) if m else None


class JavaProvider:
    name = "java"

    def detect(self, src: SourceTree) -> bool:
        return src.has_file("pom.xml") or any(src.has_file(f) for f in GRADLE_FILES)

    def analyze(self, src: SourceTree) -> Detection:
        det = Detection(stack="java")
        maven = src.has_file("pom.xml")
        build_file = "pom.xml" if maven else next(f for f in GRADLE_FILES if src.has_file(f))
        text = src.read_text(build_file) or ""
        det.package_manager = "maven" if maven else "gradle"
        kotlin = "kotlin" in text.lower() and (src.has_dir("src/main/kotlin") or build_file.endswith(".kts"))
        note(det, build_file, f"{build_file}: a {'Kotlin' if kotlin else 'Java'} app built with "
                              f"{det.package_manager}", W_MANIFEST)
        wrapper = "mvnw" if maven else "gradlew"
        if src.has_file(wrapper):
            note(det, wrapper, f"the {wrapper} wrapper pins the build tool", W_LOCKFILE)
        self._version(src, det, text, maven)
        for marker, fw in FRAMEWORKS:
            if marker in text:
                det.framework = fw
                note(det, build_file, f"uses {marker}", W_FRAMEWORK)
                break
        for marker, service in DEP_SERVICES:
            if re.search(rf"[\":>]{re.escape(marker)}[\":<-]", text) or f"'{marker}" in text:
                add_service(det, service, build_file, f"depends on {marker}")
        det.internal_port = self._port(src, det)
        tool = f"./{wrapper}" if src.has_file(wrapper) else ("mvn" if maven else "gradle")
        if maven:
            det.build_command = f"{tool} -DskipTests package"
            artifact = self._maven_artifact(text)
            jar = "target/quarkus-app/quarkus-run.jar" if det.framework == "quarkus" else \
                f"target/{artifact}.jar" if artifact else "target/*.jar"
        else:
            task = "bootJar" if det.framework == "spring-boot" else "buildFatJar" if det.framework == "ktor" else \
                "shadowJar" if "shadow" in text and det.framework != "quarkus" else \
                "installDist" if "application" in text and det.framework is None and "mainClass" in text else "build"
            det.build_command = f"{tool} {task} -x test" if task == "build" else f"{tool} {task}"
            name = self._gradle_name(src)
            m = re.search(r"^version\s*=\s*['\"]([^'\"]+)['\"]", text, re.MULTILINE)
            stem = f"{name}-{m.group(1)}" if name and m else name
            if det.framework == "quarkus":
                jar = "build/quarkus-app/quarkus-run.jar"
            elif task == "shadowJar":
                jar = f"build/libs/{stem}-all.jar" if stem else "build/libs/*-all.jar"
            elif task == "buildFatJar":
                jar = f"build/libs/{name}-all.jar" if name else "build/libs/*-all.jar"
            elif task == "bootJar" and stem:
                jar = f"build/libs/{stem}.jar"
            elif task == "installDist" and name:
                det.start_command = f"./build/install/{name}/bin/{name}"
                note(det, build_file, "the application plugin installs a start script", W_ENTRYPOINT)
                return det
            else:
                jar = "build/libs/*[!n].jar" if task == "build" else "build/libs/*.jar"
        det.start_command = f"java -jar {jar}"
        note(det, build_file, f"the build produces {jar}", W_ENTRYPOINT)
        return det

    def _maven_artifact(self, pom: str) -> str | None:
        body = re.sub(r"<parent>.*?</parent>", "", pom, flags=re.DOTALL)
        body = re.sub(r"<(dependencies|build|profiles|dependencyManagement)>.*?</\1>", "", body, flags=re.DOTALL)
        artifact, version = _tag(body, "artifactId"), _tag(body, "version")
        final = _tag(pom, "finalName")
        if final and "$" not in final:
            return final
        if artifact and version and "$" not in version:
            return f"{artifact}-{version}"
        return None

    def _gradle_name(self, src: SourceTree) -> str | None:
        for f in ("settings.gradle.kts", "settings.gradle"):
            m = re.search(r"rootProject\.name\s*=\s*['\"]([^'\"]+)['\"]", src.read_text(f) or "")
            if m:
                return m.group(1)
        return None

    def _version(self, src: SourceTree, det: Detection, text: str, maven: bool) -> None:
        patterns = (r"<java\.version>\s*(\d+)", r"<maven\.compiler\.release>\s*(\d+)",
                    r"<maven\.compiler\.target>\s*(?:1\.)?(\d+)", r"<release>\s*(\d+)</release>") if maven else (
            r"languageVersion(?:\.set\(|\s*=\s*)\s*JavaLanguageVersion\.of\(\s*(\d+)", r"jvmToolchain\(\s*(\d+)",
            r"(?:source|target)Compatibility\s*=\s*(?:JavaVersion\.VERSION_(?:1_)?(\d+)|['\"](?:1\.)?(\d+))",
            r"JvmTarget\.JVM_(\d+)")
        for pat in patterns:
            m = re.search(pat, text)
            if m:
                det.runtime_version = next(g for g in m.groups() if g)
                note(det, "pom.xml" if maven else "build.gradle", f"targets Java {det.runtime_version}", W_VERSION)
                return
        for f in (".java-version", ".sdkmanrc", ".tool-versions"):
            m = re.search(r"(?:java[\s=]+)?(?:[a-z]+-)?(\d+)", src.read_text(f) or "")
            if m:
                det.runtime_version = m.group(1)
                note(det, f, f"{f} pins Java {m.group(1)}", W_VERSION)
                return

    def _yaml_port(self, src: SourceTree, rel: str, dotted: str) -> int | None:
        """`server.port` in a (possibly multi-document) YAML config; `${PORT:8080}` gives its default."""
        for doc in src.read_yaml_all(rel) or []:
            node = doc
            for part in dotted.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            if node is None and isinstance(doc, dict):
                node = doc.get(dotted)  # flat keys are legal YAML config too
            m = re.search(r"(\d{2,5})\}?$", str(node)) if node is not None else None
            if m:
                return int(m.group(1))
        return None

    def _port(self, src: SourceTree, det: Detection) -> int:
        keys = {"spring-boot": r"server\.port", "quarkus": r"quarkus\.http\.port",
                "micronaut": r"micronaut\.server\.port"}
        for f in CONFIG_FILES:
            text = src.read_text(f)
            if text is None:
                continue
            for service in services_from_text(text.replace("jdbc:", "")):
                add_service(det, service, f, f"{f} has a {service} connection URL")
            key = keys.get(det.framework or "", r"server\.port")
            m = re.search(rf"^\s*{key}\s*[=:]\s*(?:\$\{{PORT:)?(\d{{2,5}})", text, re.MULTILINE)
            if m is None and f.endswith((".yml", ".yaml")):
                port = self._yaml_port(src, f, key.replace("\\", ""))
                if port:
                    note(det, f, f"{f} sets port {port}", 5)
                    return port
            if m is None and f.endswith(".conf"):
                m = re.search(r"port\s*=\s*(?:\$\{?\??PORT\}?\s*)?(\d{2,5})", text)
            if m:
                note(det, f, f"{f} sets port {m.group(1)}", 5)
                return int(m.group(1))
        if det.framework == "ktor":
            for f in src.glob("src/main/kotlin/**/*.kt", max_depth=8)[:30]:
                m = re.search(r"embeddedServer\([^)]*port\s*=\s*(\d{2,5})", src.read_text(f) or "")
                if m:
                    note(det, f, f"{f} binds port {m.group(1)}", 5)
                    return int(m.group(1))
        return 8080

    def plan(self, det: Detection, src: SourceTree) -> BuildPlan:
        """Maven or Gradle builds the jar (tests skipped) after resolving dependencies from the build files alone;
        the runtime image gets the jar (Quarkus: its fast-jar directory)."""
        version = major_minor(det.runtime_version, DEFAULT_VERSIONS["java"]).split(".")[0]
        jar = next((w for w in (det.start_command or "").split() if w.endswith(".jar")), "")
        pm = det.package_manager or ("gradle" if any(src.has_file(f) for f in ("build.gradle", "build.gradle.kts"))
                                     else "maven")
        if not jar:
            jar = "target/*.jar" if pm == "maven" else "build/libs/*.jar"
        build_words = (det.build_command or "").split()
        if pm == "gradle":
            tasks = [w for w in build_words[1:] if not w.startswith("-")] or ["build"]
            manifests = [f for f in ("settings.gradle", "settings.gradle.kts", "build.gradle", "build.gradle.kts",
                                     "gradle.properties") if src.has_file(f)]
            build = "gradle --no-daemon -x test " + " ".join(tasks)
        else:
            manifests = ["pom.xml"]
            build = "mvn -B -DskipTests package"
        # Quarkus' fast-jar is a directory, not one jar: the whole directory goes to the runtime image.
        artifact_dir = jar.rsplit("/", 1)[0] if "quarkus-app" in jar else ""
        return BuildPlan("java", det.framework, pm, version, serving_port("java", det.internal_port, False), "", build,
                         manifests, template="java/Dockerfile.j2", artifact=jar, target=artifact_dir)
