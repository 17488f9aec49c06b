"""The adversarial site (tests/adversarial.py): every way a real page obtains a user's file and sends it,
run in headless Chromium with the extension paired (the site must get only the protected photo), unpaired
and with the server stopped (the site must get nothing and the person a notice), and without the
extension (control: every page must leak, or the judge could not see a leak).
"""

import os
import time

import pytest
import skimage

from adversarial import BLOCKED_EVEN_WHEN_PAIRED, PAGES, Judge, Receiver
from browser import browsers_by_mode, chromium_available, drop_file, paste_image, put_on_clipboard

pytestmark = pytest.mark.skipif(not chromium_available(), reason="needs /usr/bin/chromium")

ASTRONAUT = os.path.join(os.path.dirname(skimage.__file__), "data", "astronaut.png")
FACE_CORE = (195, 95, 255, 155)  # eyes to mouth of the astronaut (tests/test_extension.py)
FILL = (255, 0, 255)
NOTICE = "#photo-shield-notice .panel"
EXPECTED = {"paired": "protected", "unpaired": "blocked", "stopped": "blocked", "control": "leaked"}


@pytest.fixture(scope="module")
def receiver():
    with open(ASTRONAUT, "rb") as handle:
        server = Receiver(handle.read())
    yield server
    server.stop()


@pytest.fixture(scope="module")
def judge():
    with open(ASTRONAUT, "rb") as handle:
        return Judge(handle.read(), FACE_CORE, FILL)


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("holiday")
    (folder / "astronaut.png").write_bytes(open(ASTRONAUT, "rb").read())
    (folder / "notes.txt").write_bytes(b"what we did\n")
    return str(folder)


@pytest.fixture(scope="module")
def browsers(shield_server, receiver):
    """One browser per mode, started on first use."""
    def settings_for(mode):
        settings = {"color": "ff00ff", "fill": "solid"}
        if mode == "paired":
            settings.update(port=shield_server.port, token=shield_server.token)
        elif mode == "unpaired":
            settings.update(port=shield_server.port)
        else:
            settings.update(port=closed_port(), token="x")
        return settings

    with browsers_by_mode(settings_for) as get:
        yield get


def closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


NOTICE_GRACE_S = 5.0  # a loaded machine shows the notice some time after the page's request failed


class Person:
    """Uses one page of the site as a person would, and remembers whether the extension told them anything."""

    def __init__(self, page, folder):
        self.page = page
        self.folder = folder
        self.notice_shown = False

    def dismiss_notices(self) -> bool:
        """Closes every notice of the extension, in any frame of the page; True if there was one."""
        shown = False
        for frame in self.page.frames:
            notices = frame.locator(NOTICE)
            while notices.count():
                shown = self.notice_shown = True
                notices.first.locator("button[data-choice=dismiss]").click()
        return shown

    def click_send(self, where):
        """Clicks Send, closing first any notice that is in the way."""
        for _ in range(3):
            try:
                where.locator("#send").click(timeout=3000)
                return
            except Exception:
                self.dismiss_notices()
        where.locator("#send").click(timeout=3000)

    def act(self, action):
        """Does what a person does on this page (the actions are described in tests/adversarial.py)."""
        page = self.page
        if action in ("input", "input-submit"):
            page.set_input_files("#file", ASTRONAUT)
            if action == "input-submit":
                self.click_send(page)
        elif action == "frame-input-submit":
            frame = page.frame_locator("#editor")
            frame.locator("#file").set_input_files(ASTRONAUT)
            self.click_send(frame)
        elif action == "chooser":
            with page.expect_file_chooser() as chooser:
                page.click("#pick")
            chooser.value.set_files(ASTRONAUT)
        elif action == "drop":
            drop_file(page, "#zone", ASTRONAUT)
        elif action == "drop-folder":
            drop_file(page, "#zone", self.folder)
        elif action == "paste":
            paste_image(page, "#zone", open(ASTRONAUT, "rb").read())
        elif action == "click":
            page.click("#go")
        elif action == "click-paste":
            put_on_clipboard(page, open(ASTRONAUT, "rb").read())
            page.click("#go")
        elif action == "folder":
            # Playwright's own set_input_files waits for an input event the page must not see when the
            # upload is blocked: set the folder through the DevTools protocol, as the browser's chooser would.
            cdp = page.context.new_cdp_session(page)
            root = cdp.send("DOM.getDocument")["root"]["nodeId"]
            node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": "#file"})["nodeId"]
            cdp.send("DOM.setFileInputFiles", {"files": [self.folder], "nodeId": node})
            cdp.detach()
        else:
            raise ValueError(action)

    def wait_until_done(self, timeout: float = 40.0):
        """Waits for the page's own completion signal, closing notices on the way: 'sent' or 'failed', or
        'ready' after a notice (the page never got the file, so it can send nothing later)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.dismiss_notices():
                continue
            state = self.page.evaluate("window.advState")
            if state == "sent" or (self.notice_shown and state in ("ready", "failed")):
                return
            if state == "failed":  # the page's request failed; the notice saying why may be a moment behind
                deadline = min(deadline, time.monotonic() + NOTICE_GRACE_S)
            time.sleep(0.1)
        if self.page.evaluate("window.advState") == "failed":
            return  # judged as it is: a failure with no notice is 'broken'
        raise AssertionError(f"broken: the page never finished and no notice was shown "
                             f"(advState={self.page.evaluate('window.advState')!r})")


@pytest.mark.parametrize("mode", list(EXPECTED))
@pytest.mark.parametrize("name", list(PAGES))
def test_site_gets_only_protected_photos(browsers, receiver, judge, photo_folder, mode, name):
    context = browsers(mode)
    page = context.new_page()
    try:
        page.goto(f"{receiver.origin}/{name}.html")
        if name in ("document-open", "blank-frame-write"):
            page.wait_for_function("window.advRewritten === true")
        receiver.take()
        person = Person(page, photo_folder)
        person.act(PAGES[name])
        person.wait_until_done()
        verdict = judge.judge(receiver.take(), person.notice_shown)
        detail = page.evaluate("window.advDetail")
    finally:
        page.close()
    expected = "blocked" if mode == "paired" and name in BLOCKED_EVEN_WHEN_PAIRED else EXPECTED[mode]
    assert verdict.outcome == expected, f"{name} ({mode}): {verdict.outcome}: {verdict.why} {detail}"
