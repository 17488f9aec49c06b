"""An image pasted (Ctrl+V) into a contenteditable editor that uploads it, in Firefox ESR: the site must get
the protected copy while paired, and nothing but a notice with the server stopped; without the extension the
editor must get the original (or the test could not see a lost paste). One editor reads
clipboardData.files, one clipboardData.items/getAsFile(), one the beforeinput insertFromPaste edit's
dataTransfer (as Slate does). Firefox's headless clipboard holds text only, so this runs in a real Firefox
window on Xvfb (xvfb-run). The same pages run in Chromium in test_extension_sources.py.
"""

import os

import pytest

from adversarial import Judge, Receiver
from browser import EXTENSION_DIR
from test_extension_sources import ASTRONAUT, FACE_CORE, FILL, closed_port
from test_extension_sources_firefox import DONE_OR_NOTICE, NOTICE_SHOWN

driver = pytest.importorskip("firefox.driver", reason="needs the Firefox harness in tests/firefox/")
REQUIRED = bool(os.environ.get("SHIELD_REQUIRE_BROWSER"))
pytestmark = [
    pytest.mark.skipif(not driver.firefox_available() and not REQUIRED,
                       reason="needs /usr/bin/firefox-esr, node and npm puppeteer-core (scripts/test.sh)"),
    pytest.mark.skipif(not driver.xvfb_available() and not REQUIRED, reason="needs xvfb-run (Debian xvfb, scripts/test.sh)"),
]

EDITORS = ["paste", "paste-files", "paste-beforeinput"]
EXPECTED = {"paired": "protected", "stopped": "blocked", "control": "leaked"}


def paste_steps(origin, name):
    return [
        {"goto": f"{origin}/{name}.html"},
        {"click": "#zone"},
        {"imageOnClipboard": ASTRONAUT},
        {"press": "Control+V"},
        {"waitFor": DONE_OR_NOTICE, "timeoutMs": 20000},
        {"evaluate": NOTICE_SHOWN},
        {"answerNotice": "dismiss", "optional": True},
        {"waitFor": "window.advState !== 'busy'", "timeoutMs": 20000},
        {"evaluate": "[window.advState, window.advDetail]"},
    ]


def run(modes, extension):
    assert driver.xvfb_available(), "needs xvfb-run (Debian xvfb; scripts/test.sh installs it)"
    photo = open(ASTRONAUT, "rb").read()
    runs = [(mode, name, Receiver(photo)) for mode in modes for name in EDITORS]
    try:
        results = driver.run_scenarios(
            [{"settings": {**modes[mode], "color": "ff00ff", "fill": "solid"}, "bare": extension is None,
              "steps": paste_steps(site.origin, name)} for mode, name, site in runs],
            timeout=300, extension=extension, window=True)
        return [(mode, name, site.take(), answers) for (mode, name, site), answers in zip(runs, results)]
    finally:
        for _, _, site in runs:
            site.stop()


def verdicts(outcomes):
    judge = Judge(open(ASTRONAUT, "rb").read(), FACE_CORE, FILL)
    found = {}
    for mode, name, received, answers in outcomes:
        notice_shown = len(answers) > 5 and answers[5] is True
        verdict = judge.judge(received, notice_shown)
        found[(mode, name)] = (verdict.outcome, f"{verdict.why} {answers[-1]}")
    return found


def test_firefox_pasted_image_reaches_editor_only_protected(shield_server):
    found = verdicts(run({"paired": {"port": shield_server.port, "token": shield_server.token},
                          "stopped": {"port": closed_port(), "token": "x"}}, EXTENSION_DIR))
    failures = [f"{name} ({mode}): {outcome} {why}" for (mode, name), (outcome, why) in found.items()
                if outcome != EXPECTED[mode]]
    assert not failures, "\n".join(failures)


def test_firefox_editors_get_the_pasted_original_without_extension():
    found = verdicts(run({"control": {}}, None))
    failures = [f"{name}: {outcome} {why}" for (_, name), (outcome, why) in found.items() if outcome != "leaked"]
    assert not failures, "\n".join(failures)
