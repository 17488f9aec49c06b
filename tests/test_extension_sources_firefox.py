"""The adversarial site (tests/adversarial.py) in Firefox ESR, through the Firefox harness in
tests/firefox/ (npm puppeteer-core over WebDriver BiDi): the pages a file upload or a click drives,
paired (the site gets only the protected photo) and with the server stopped (nothing, and a notice).
The Chromium run (test_extension_sources.py) covers every page, and the control run without the extension.
"""

import os

import pytest

from adversarial import BLOCKED_EVEN_WHEN_PAIRED, Judge, Receiver
from browser import EXTENSION_DIR
from test_extension_sources import ASTRONAUT, FACE_CORE, FILL, closed_port

driver = pytest.importorskip("firefox.driver", reason="needs the Firefox harness in tests/firefox/")
pytestmark = pytest.mark.skipif(not driver.firefox_available() and not os.environ.get("SHIELD_REQUIRE_BROWSER"),
                                reason="needs /usr/bin/firefox-esr, node and npm puppeteer-core (scripts/test.sh)")

# Pages a file upload (`input`, `input-submit`) or a click (`click`) drives (tests/adversarial.py).
FIREFOX_PAGES = {
    "fetch-formdata": "input", "xhr-raw": "input", "canvas-resize": "input", "chunks-parallel": "input",
    "form-submit": "input-submit", "document-open": "input-submit", "pieces-of-original": "click",
    "chunks-multipart": "input", "chunks-rewrapped": "input",
}
NOTICE_SHOWN = ("Boolean(document.getElementById('photo-shield-notice') && "
                "document.getElementById('photo-shield-notice').shadowRoot.querySelector('.panel'))")
DONE_OR_NOTICE = f"['sent', 'failed'].includes(window.advState) || {NOTICE_SHOWN}"


def steps(origin, name, action):
    """A person's steps on the page, then the page's completion signal (as in tests/adversarial.py)."""
    plan = [{"goto": f"{origin}/{name}.html"}]
    if name == "document-open":
        plan.append({"waitFor": "window.advRewritten === true"})
    if action == "click":
        plan.append({"click": "#go"})
    else:
        plan.append({"upload": "#file", "files": [ASTRONAUT]})
    if action == "input-submit":
        plan.append({"click": "#send"})
    return plan + [
        {"waitFor": DONE_OR_NOTICE, "timeoutMs": 30000},
        {"evaluate": NOTICE_SHOWN},
        {"answerNotice": "dismiss", "optional": True},
        {"waitFor": "window.advState !== 'busy'", "timeoutMs": 30000},
        {"evaluate": "[window.advState, window.advDetail]"},
    ]


def test_firefox_site_gets_only_protected_photos(shield_server):
    photo = open(ASTRONAUT, "rb").read()
    judge = Judge(photo, FACE_CORE, FILL)
    modes = {"paired": {"port": shield_server.port, "token": shield_server.token},
             "stopped": {"port": closed_port(), "token": "x"}}
    runs = []
    for mode in modes:
        for name, action in FIREFOX_PAGES.items():
            site = Receiver(photo)
            runs.append((mode, name, site, steps(site.origin, name, action)))
    try:
        results = driver.run_scenarios([
            {"settings": {**modes[mode], "color": "ff00ff", "fill": "solid"}, "steps": plan}
            for mode, _, _, plan in runs], timeout=600, extension=EXTENSION_DIR)
        failures = []
        for (mode, name, site, plan), answers in zip(runs, results):
            errors = [answer["error"] for answer in answers if isinstance(answer, dict) and "error" in answer]
            shown_at = len(plan) - 4  # the step that asks whether a notice is shown
            notice_shown = len(answers) > shown_at and answers[shown_at] is True
            verdict = judge.judge(site.take(), notice_shown)
            expected = "protected" if mode == "paired" and name not in BLOCKED_EVEN_WHEN_PAIRED else "blocked"
            if verdict.outcome != expected:
                failures.append(f"{name} ({mode}): {verdict.outcome} {verdict.why} {answers[-1]} {errors}")
        assert not failures, "\n".join(failures)
    finally:
        for _, _, site, _ in runs:
            site.stop()
