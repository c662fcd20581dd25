"""The web page in headless Chromium against a whole Portside and the real engine: a first-time user goes from
an empty page to a running app and back (sign up, add a repository, detection, edit the Dockerfile, deploy, logs,
status and link, stop, rollback, a domain added, the releases). Screenshots of each step land in
tests/artifacts/web/ (git-ignored)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest
from playwright.sync_api import Locator, Page, expect, sync_playwright

from tests.conftest import copy_fixture
from tests.support import ROOT, StartupFailed, System, running_system

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "tests" / "artifacts" / "web"

pytestmark = pytest.mark.slow


EMAIL, PASSWORD = "first@portside.test", "a long first password"


@pytest.fixture(scope="module")
def fresh(engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """A Portside of its own with no user yet, so the browser is the first to sign up."""
    try:
        with running_system(tmp_path_factory.mktemp("portside-web"), engine, sign_up=False) as running:
            yield running
    except StartupFailed as exc:
        pytest.fail(str(exc))


@pytest.fixture
def page() -> Iterator[Page]:
    if not CHROMIUM.exists():
        pytest.fail("the browser test needs Debian's chromium: run scripts/ensure-chromium.sh (.ci/run does)")
    if not (ROOT / "services" / "web" / "dist" / "index.html").is_file():
        pytest.fail("the web page is not built: run `make install` (npm ci + the Vite build)")
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        context = browser.new_context(viewport={"width": 1366, "height": 800})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            yield page
        finally:
            page.screenshot(path=str(ARTIFACTS / "last.png"), full_page=True)
            context.close()
            browser.close()
        assert not errors, f"uncaught errors in the page: {errors}"


class Steps:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.n = 0

    def shot(self, name: str) -> None:
        self.n += 1
        self.page.screenshot(path=str(ARTIFACTS / f"{self.n:02d}-{name}.png"), full_page=True)


def status_badge(page: Page) -> Locator:
    return page.locator("main .header [data-testid=status-badge]")


def test_first_time_user_deploys_from_the_page(fresh: System, page: Page, tmp_path: Path) -> None:
    system = fresh
    steps = Steps(page)
    source = copy_fixture("python-flask", tmp_path)
    page.goto(system.url + "/")

    # 1. Sign up (the first user becomes admin). Only a Portside without auth routes skips this.
    auth = httpx.get(f"{system.url}/api/auth/me", timeout=10)
    if auth.status_code != 404:
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible(timeout=20_000)
        page.get_by_role("button", name="First time here? Create an account").click()
        page.get_by_label("Email").fill(EMAIL)
        page.get_by_label("Password").fill(PASSWORD)
        steps.shot("sign-up")
        page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible(timeout=20_000)
    if auth.status_code != 404:
        expect(page.get_by_text(f"{EMAIL} (admin)")).to_be_visible()
        expect(page.get_by_role("link", name="Users")).to_be_visible()
        # The test's own API calls act as the same user.
        system.token = system.api_token(system.login(EMAIL, PASSWORD), "web-e2e")
        system.client.headers["Authorization"] = f"Bearer {system.token}"
    expect(page.get_by_text("Nothing deployed yet")).to_be_visible()
    steps.shot("empty-dashboard")

    # 2. Add the fixture repository (a folder on this machine).
    page.get_by_role("link", name="Add your first repository").click()
    page.get_by_label("Folder on this machine").check()
    page.get_by_label("Absolute path").fill(str(source))
    steps.shot("add-repository")
    page.get_by_role("button", name="Add repository").click()

    # 3. Detection runs as the repository page opens.
    panel = page.get_by_test_id("detection-panel")
    expect(panel).to_contain_text("python", timeout=60_000)
    expect(panel).to_contain_text("flask")
    expect(panel.get_by_role("meter")).to_be_visible()
    expect(panel).to_contain_text("requirements.txt")  # the evidence list names the file
    steps.shot("detection")
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(page).to_have_url(re.compile(r"/deployments/\d+$"), timeout=60_000)
    deployment_id = int(page.url.rsplit("/", 1)[1])
    expect(status_badge(page)).to_have_text("ready", timeout=30_000)

    # 4. Edit the Dockerfile: an invalid line is refused with a marker at its line; fixing it saves.
    page.get_by_role("tab", name="Files").click()
    expect(page.locator(".monaco-editor").first).to_be_visible(timeout=30_000)
    page.locator(".monaco-editor .view-lines").click()
    expect(page.locator(".monaco-editor.focused")).to_be_visible()
    page.keyboard.press("Control+End")
    page.keyboard.press("Enter")
    page.keyboard.type("BOGUS this is not an instruction")
    expect(page.get_by_test_id("unsaved")).to_contain_text("Dockerfile")
    page.get_by_role("button", name="Save").click()
    alert = page.locator(".error[role=alert]")
    expect(alert).to_contain_text("INVALID_DOCKERFILE", timeout=30_000)
    expect(alert).to_contain_text("unknown instruction")
    expect(page.locator(".monaco-editor .squiggly-error").first).to_be_attached(timeout=10_000)
    steps.shot("invalid-dockerfile-marker")
    page.locator(".monaco-editor .view-line", has_text="BOGUS").click()
    expect(page.locator(".monaco-editor.focused")).to_be_visible()
    page.keyboard.press("End")
    page.keyboard.press("Shift+Home")
    page.keyboard.type("ENV EDITED_IN_THE_BROWSER=1")
    page.keyboard.press("Control+s")  # the keyboard shortcut saves
    expect(page.locator(".ok-text", has_text="Saved")).to_be_visible(timeout=30_000)
    expect(page.locator(".error[role=alert]")).to_have_count(0)
    expect(page.locator(".monaco-editor .squiggly-error")).to_have_count(0)
    saved = system.call("GET", f"/api/deployments/{deployment_id}")["data"]["dockerfile_content"]
    assert "ENV EDITED_IN_THE_BROWSER=1" in saved and "BOGUS" not in saved
    steps.shot("dockerfile-saved")

    # 5. Deploy: build progress, then running; the app's own line arrives in the logs panel.
    page.get_by_role("tab", name="Overview").click()
    page.get_by_role("button", name="Deploy", exact=True).click()
    expect(page.get_by_test_id("build-progress")).to_be_visible(timeout=30_000)
    expect(page.locator("[data-testid=log-line].src-build").first).to_be_visible(timeout=120_000)
    expect(page.get_by_test_id("build-progress")).to_contain_text(re.compile(r"step \d+ of \d+"), timeout=120_000)
    steps.shot("building")
    expect(status_badge(page)).to_have_text("running", timeout=600_000)
    link = page.get_by_test_id("app-url")
    expect(link).to_be_visible(timeout=30_000)
    url = link.get_attribute("href")
    assert url
    answer = httpx.get(url.replace("localhost", "127.0.0.1"), timeout=10)
    assert answer.status_code == 200 and "hello from flask" in answer.text
    expect(page.locator("[data-testid=log-line].src-app", has_text="request to /").first).to_be_visible(timeout=60_000)
    expect(page.get_by_text("CPU:")).to_be_visible()
    steps.shot("running-with-app-log")

    # 6. Deploy again (a second image), stop, then roll back to the first image.
    page.keyboard.press("Control+Shift+Enter")  # the deploy shortcut
    expect(status_badge(page)).not_to_have_text("running", timeout=30_000)
    expect(status_badge(page)).to_have_text("running", timeout=600_000)
    expect(page.get_by_role("button", name="Rollback")).to_be_enabled(timeout=30_000)
    page.get_by_role("button", name="Stop").click()
    expect(status_badge(page)).to_have_text("stopped", timeout=120_000)
    expect(page.get_by_test_id("app-url")).to_have_count(0, timeout=10_000)
    steps.shot("stopped")
    page.get_by_role("button", name="Rollback").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("previous successful image")
    dialog.get_by_role("button", name="Roll back").click()
    expect(status_badge(page)).to_have_text("running", timeout=300_000)
    after = system.call("GET", f"/api/deployments/{deployment_id}")["data"]
    assert after["running_image_tag"] != saved and after["status"] == "running"
    url = page.get_by_test_id("app-url").get_attribute("href")
    assert url and httpx.get(url.replace("localhost", "127.0.0.1"), timeout=10).status_code == 200
    timeline = page.get_by_test_id("timeline")
    expect(timeline).to_contain_text("stopped")
    steps.shot("rolled-back")

    # 6b. A domain added on the Domains tab is the API's; the Releases tab marks the release that runs.
    name = f"web-{deployment_id}.portside.test"
    page.get_by_role("tab", name="Domains").click()
    page.get_by_label("Domain name").fill(name.upper())
    page.get_by_role("button", name="Add domain").click()
    expect(page.get_by_test_id("domains-panel")).to_contain_text(f"{name} added", timeout=30_000)
    assert name in system.call("GET", f"/api/deployments/{deployment_id}/domains")["data"]["domains"]
    expect(page.get_by_role("button", name=f"Remove {name}")).to_be_enabled()
    steps.shot("domain-added")
    page.get_by_role("tab", name="Releases").click()
    releases = page.get_by_test_id("releases-panel")
    expect(releases.locator("tbody tr")).to_have_count(
        len(system.call("GET", f"/api/deployments/{deployment_id}/releases")["data"]), timeout=30_000)
    expect(releases.locator("tr[aria-current=true]")).to_contain_text(after["running_image_tag"])
    steps.shot("releases")

    # 7. The dashboard lists it, running.
    page.get_by_role("link", name="Dashboard").first.click()
    expect(page.locator("table.deployments")).to_contain_text("running")
    steps.shot("dashboard")
    if auth.status_code != 404:
        page.get_by_role("link", name="Users").click()
        expect(page.get_by_role("heading", name="Users")).to_be_visible()
        expect(page.locator("table")).to_contain_text(EMAIL)
        steps.shot("users")
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    system.call("POST", f"/api/deployments/{deployment_id}/stop", params={"wait": "true"})
