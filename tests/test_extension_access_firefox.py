"""Withdrawn site access in Firefox ESR (tests/firefox/ driver): the person takes the add-on's access to
websites away, as in about:addons; the extension must then say so loudly, once: a system notification, its
explanation page in a FOREGROUND tab (Firefox opens runtime.openOptionsPage() in the background), and the
popup. Clicking the page's button gives access back (Firefox's permission prompt is accepted by the pref
extensions.webextOptionalPermissionPrompts=false); the page turns green, the notification goes, and uploads
on a site are protected again.

The site is `photos.test` (resolved to loopback by network.dns.localDomains): the host permission for
the server, http://127.0.0.1/*, covers every port on 127.0.0.1, so a site there never loses access.
"""

import os

import pytest

from browser import UploadSite
from firefox.driver import EXTENSION_ORIGIN, firefox_available, run_scenarios
from test_extension import ASTRONAUT, assert_protected, paired

pytestmark = pytest.mark.skipif(not firefox_available() and not os.environ.get("SHIELD_REQUIRE_BROWSER"),
                                reason="needs /usr/bin/firefox-esr, node and npm puppeteer-core (scripts/test.sh)")

HOST = "photos.test"
PAGE = "access/access.html"
NOTIFICATIONS = "browser.notifications.getAll().then((all) => Object.keys(all))"
# In the explanation page itself: is its tab the active one, is it on screen, and what does it say.
SEEN = """(async () => ({ active: (await browser.tabs.getCurrent()).active, visible: document.visibilityState,
    lost: document.body.dataset.accessLost, text: document.body.innerText }))()"""
OPEN_PAGES = "browser.extension.getViews({ type: 'tab' }).filter((v) => v.location.pathname === '/" + PAGE + "').length"


# The page closes its own tab a moment after answering (the answer would otherwise be lost with the tab).
CLOSE_OWN_TAB = "(setTimeout(() => browser.tabs.getCurrent().then((tab) => browser.tabs.remove(tab.id)), 100), true)"
WITHDRAW = "browser.permissions.remove({ origins: ['http://*/*', 'https://*/*'] })"


def plan(origin):
    """(label, step) pairs; the test reads each step's result by its label."""
    return [
        ("site", {"goto": origin + "/"}),
        ("withdrawn", {"extension": WITHDRAW}),
        ("shown", {"waitFor": "document.body.dataset.accessLost === 'true'", "tab": PAGE}),
        ("seen", {"evaluate": SEEN, "tab": PAGE}),
        ("notifications", {"extension": NOTIFICATIONS}),
        ("badge", {"extension": "browser.action.getBadgeText({})"}),
        # The popup says the same.
        ("popup", {"goto": EXTENSION_ORIGIN + "/popup/popup.html"}),
        ("popup shown", {"waitFor": "document.body.dataset.accessLost === 'true'"}),
        ("popup text", {"evaluate": "document.getElementById('access-lost').hidden ? '' : "
                                    "document.getElementById('access-lost').innerText"}),
        # The page's button gives access back (a real click: permissions.request needs one).
        ("restore", {"click": "#restore-access", "tab": PAGE}),
        ("green", {"waitFor": "document.body.dataset.accessLost === 'false'", "tab": PAGE}),
        ("seen back", {"evaluate": SEEN, "tab": PAGE}),
        ("notifications back", {"extension": NOTIFICATIONS}),
        ("badge back", {"extension": "browser.action.getBadgeText({})"}),
        ("popup back", {"waitFor": "document.body.dataset.accessLost === 'false'"}),
        ("popup hidden", {"evaluate": "document.getElementById('access-lost').hidden"}),
        # Access is really back: an upload on the site is protected again.
        ("site again", {"goto": origin + "/"}),
        ("upload", {"upload": "#js-input", "files": [ASTRONAUT]}),
        ("uploaded", {"waitFor": "document.getElementById('status').textContent.startsWith('uploaded:input')",
                      "timeoutMs": 30000}),
        # A second loss is announced again; once the person closed its page, later checks (the periodic
        # one, a restarted background) do not bring it back.
        ("close green page", {"evaluate": CLOSE_OWN_TAB, "tab": PAGE}),
        ("closed", {"sleep": 500}),
        ("withdrawn again", {"extension": WITHDRAW}),
        ("shown again", {"waitFor": "document.body.dataset.accessLost === 'true'", "tab": PAGE}),
        ("notifications again", {"extension": NOTIFICATIONS}),
        ("close red page", {"evaluate": CLOSE_OWN_TAB, "tab": PAGE}),
        ("closed again", {"sleep": 500}),
        ("checked", {"extension": "browser.runtime.sendMessage({ type: 'checkSiteAccess' })"}),
        ("settle", {"sleep": 1000}),
        ("pages after check", {"extension": OPEN_PAGES}),
    ]


@pytest.fixture(scope="module")
def firefox(shield_server):
    site = UploadSite()
    steps = plan(f"http://{HOST}:{site.port}")
    try:
        (results,) = run_scenarios([{"settings": paired(shield_server), "steps": [step for _, step in steps]}],
                                   timeout=120,
                                   # The XUL alerts: headless, with no notification daemon, a system alert
                                   # closes at once and notifications.getAll() would find nothing.
                                   prefs={"network.dns.localDomains": HOST, "alerts.useSystemBackend": False,
                                          "extensions.webextOptionalPermissionPrompts": False})
        yield dict(zip([label for label, _ in steps], results)), site
    finally:
        site.stop()


def no_errors(results, until=None):
    errors = []
    for label, result in results.items():
        if isinstance(result, dict) and "error" in result:
            errors.append((label, result))
        if label == until:
            break
    assert not errors, errors
    assert until is None or until in results, f"stopped before {until}: {list(results)}"


def test_withdrawn_access_shouts_in_firefox(firefox):
    results, _ = firefox
    no_errors(results, until="popup text")
    seen = results["seen"]
    assert seen["active"] is True and seen["visible"] == "visible", seen  # in front, not a background tab
    assert seen["lost"] == "true"
    assert "about:addons" in seen["text"] and "Permissions" in seen["text"]  # how, in this browser
    assert results["notifications"] == ["photo-shield-access-lost"]  # the system notification
    assert results["badge"] == "!!"
    popup = results["popup text"]
    assert "NOT protected" in popup and "about:addons" in popup


def test_giving_access_back_turns_everything_green_in_firefox(firefox):
    results, site = firefox
    no_errors(results, until="uploaded")
    back = results["seen back"]
    assert back["lost"] == "false" and "see websites again" in back["text"]
    assert results["notifications back"] == []  # the notification is gone
    assert results["badge back"] != "!!"
    assert results["popup hidden"] is True
    (upload,) = site.wait_for_uploads(1, timeout=5)
    (photo,) = upload.files()
    assert_protected(photo.data)


def test_each_loss_warns_once_in_firefox(firefox):
    results, _ = firefox
    no_errors(results)
    assert results["notifications again"] == ["photo-shield-access-lost"]
    assert results["pages after check"] == 0
