"""The extension set up by machine policy, as a parent's administration tool does it: Chromium reads
/etc/chromium/policies/managed/*.json when it starts and gives the extension its part ("3rdparty") through
chrome.storage.managed. Real Chromium, the real extension, a real `shield serve` and the loopback test site.

Its own module: Chromium watches that folder, so a browser of another module would see the policy too.
"""

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from browser import EXTENSION_ID, UploadSite, chromium_available, extension_browser
from test_extension import ASTRONAUT, FILL, assert_protected, closed_port, only_upload, options_page

pytestmark = pytest.mark.skipif(not chromium_available(), reason="needs /usr/bin/chromium")

POLICY_FILE = Path("/etc/chromium/policies/managed/photo-shield-test.json")


@pytest.fixture
def machine_policy():
    """Writes the extension's policy into Chromium's machine policy folder; removes it afterwards."""
    try:
        POLICY_FILE.parent.mkdir(parents=True, exist_ok=True)
        POLICY_FILE.write_text("{}")
    except PermissionError:
        if os.environ.get("SHIELD_REQUIRE_BROWSER"):  # CI runs as root: there this test must run
            raise
        pytest.skip(f"needs write access to {POLICY_FILE.parent} (root)")

    def write(values: dict) -> None:
        POLICY_FILE.write_text(json.dumps({"3rdparty": {"extensions": {EXTENSION_ID: values}}}))

    yield write
    POLICY_FILE.unlink(missing_ok=True)


@pytest.fixture
def site():
    server = UploadSite()
    yield server
    server.stop()


def test_machine_policy_wins_over_what_the_child_changed(machine_policy, shield_server, site):
    machine_policy({"enabled": True, "port": shield_server.port, "token": shield_server.token, "color": "ff00ff",
                    "lockedProfile": True})
    with extension_browser() as browser:
        # What someone at the keyboard could have stored: protection off, another port, no token.
        browser.reset(enabled=False, port=closed_port(), token="")
        state = browser.worker.evaluate("async () => await PhotoShieldSettings.load()")
        assert state["policyLocked"] and state["locked"]
        assert sorted(state["managedKeys"]) == ["color", "enabled", "port", "token"]
        assert state["settings"]["enabled"] is True and state["settings"]["port"] == shield_server.port
        assert state["settings"]["mode"] == "people"  # a locked profile hides whole people by default

        page = browser.context.new_page()
        page.goto(site.origin + "/")
        page.set_input_files("#js-input", ASTRONAUT)
        photo = only_upload(site).files()[0].data
        assert_protected(photo)
        torso = np.asarray(Image.open(io.BytesIO(photo)).convert("RGB"), dtype=np.int16)[300:450, 150:350]
        assert (np.abs(torso - np.array(FILL)) < 40).all(axis=2).mean() > 0.9

        options = options_page(browser)
        options.wait_for_selector("#policy-note:not([hidden])")
        for key in ("enabled", "port", "token", "color"):
            assert options.is_disabled(f"#{key}"), key
        assert options.is_enabled("#review")  # what policy leaves open stays the person's choice
