"""Fixtures for the browser tests: the real app (web server and Celery worker, from the integration
tests' ``start_app``) and a page in Debian's Chromium driven by Playwright."""
from pathlib import Path

import pytest

from tests.conftest import REPO_DIR
from tests.integration.test_round_trip import RunningApp, start_app  # noqa: F401 (fixture)
from tests.integration.test_studio_worker import FAST_FIT

CHROMIUM = Path("/usr/bin/chromium")
# Headless, and nothing that reaches the network on its own: the test machine may have none.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
VIEWPORT = {"width": 1440, "height": 1000}


@pytest.fixture
def chromium():
    """Debian's Chromium under Playwright; never a downloaded browser."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing (scripts/test.sh installs Debian's chromium package)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    """A fresh browser profile (so a fresh visitor) at a desktop size."""
    context = chromium.new_context(viewport=VIEWPORT, accept_downloads=True)
    yield context.new_page()
    context.close()


# Chromium logs most violations of the Content-Security-Policy to the console, but not all (a blocked
# inline style attribute, report-only directives): the page reports each one itself.
_REPORT_CSP_VIOLATIONS = """document.addEventListener('securitypolicyviolation', (event) => console.error(
  `CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || 'inline'}`
  + ` (${event.sourceFile}:${event.lineNumber})`));"""


@pytest.fixture
def script_errors(page) -> list[str]:
    """Uncaught script errors, console errors (a failed request among them) and Content-Security-Policy
    violations, collected while the test runs."""
    errors = []
    page.add_init_script(_REPORT_CSP_VIOLATIONS)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and errors.append(f"console: {message.text}"))
    return errors


@pytest.fixture
def studio_app(start_app) -> RunningApp:
    """The app with a fit of seconds: how well the automatic mix fits is tested elsewhere."""
    return start_app(**FAST_FIT)


@pytest.fixture
def output_dir() -> Path:
    """test-output/ at the top of the repository (git ignores it): files kept for people to review."""
    folder = REPO_DIR / "test-output"
    folder.mkdir(exist_ok=True)
    return folder
