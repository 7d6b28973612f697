"""Browser tests of the dashboard: Playwright (tests/requirements.txt)
driving Debian's headless Chromium against an iotflowd started by the API
suite's harness (tests/api/conftest.py: Server, users, devices).

Fixtures:
  web_server  one iotflowd for the session (embedded stores, or the servers
              the API suite's environment variables name)
  browser     headless Chromium (/usr/bin/chromium, or $IOTFLOW_CHROMIUM)
  page        a fresh context and page; records console errors, page errors
              and Content-Security-Policy violations, and fails the test on
              any of them at teardown
Screenshots go to tests/browser/out/ (git-ignored): shoot(page, name).
"""
import importlib.util
import os
import re
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
CHROMIUM = os.environ.get("IOTFLOW_CHROMIUM", "/usr/bin/chromium")
# Waits for the page, in ms: generous for a loaded CI machine.
WAIT_MS = int(float(os.environ.get("IOTFLOW_TEST_BROWSER_WAIT", "15")) * 1000)

# The API suite's harness, loaded under a name of its own (both files are
# called conftest.py; importing it as "conftest" would collide).
_spec = importlib.util.spec_from_file_location("iotflow_api_harness",
                                               HERE.parent / "api" / "conftest.py")
harness = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(harness)

# Listens from before any script of the page runs: a policy violation is
# recorded even when it happens during load. Injected by the driver, so
# the page's own CSP does not apply to it.
CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(e.violatedDirective + ' ' + (e.blockedURI || ''));
});
"""


@pytest.fixture(scope="session")
def web_server():
    srv = harness.Server().start()
    yield srv
    srv.stop_and_check()
    srv.cleanup()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"no Chromium at {CHROMIUM}: install Debian's chromium (scripts/deps.sh)")
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        yield b
        b.close()


class PageProblems:
    """What went wrong in the page; a test may declare some expected
    (page.problems.expect(r"status of 401"): a browser logs every failed
    request as a console error, a refused login too)."""

    def __init__(self):
        self.items = []
        self.expected = []

    def expect(self, pattern):
        self.expected.append(re.compile(pattern))

    def add(self, what):
        self.items.append(what)

    def unexpected(self):
        return [i for i in self.items if not any(p.search(i) for p in self.expected)]


@pytest.fixture
def page(browser, web_server):
    context = browser.new_context(base_url=web_server.base, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    context.add_init_script(CSP_LISTENER)
    pg = context.new_page()
    problems = PageProblems()
    pg.on("console", lambda m: m.type == "error" and problems.add(f"console error: {m.text}"))
    pg.on("pageerror", lambda e: problems.add(f"page error: {e}"))
    pg.problems = problems
    yield pg
    try:
        violations = pg.evaluate("window.__cspViolations || []")
    except Exception:  # the page may be gone
        violations = []
    context.close()
    problems.items += [f"CSP violation: {v}" for v in violations]
    unexpected = problems.unexpected()
    assert not unexpected, "the page reported problems:\n" + "\n".join(unexpected)


def shoot(page, name, full_page=True):
    """A screenshot (the whole page, or what the window shows) at
    tests/browser/out/<name>.png."""
    OUT.mkdir(exist_ok=True)
    path = OUT / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
