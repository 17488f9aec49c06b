"""Files that are not photos, in real headless Chromium with the real extension: videos (recognised by their
bytes, whatever their name) that the settings keep from the server (`videoAction` ask or block) are blocked
on a locked profile and asked about otherwise; documents follow the `otherFileAction` setting. Judged by
what the loopback test site received. Videos the server protects: tests/test_extension_video.py.
"""

import os
import struct

import pytest

from browser import chromium_available, extension_browser
from test_extension import (ASTRONAUT, assert_nothing_uploaded, assert_protected, expect_blocked, notice,
                            only_upload, page_upload, paired, site, write_file)  # noqa: F401 (site: fixture)

pytestmark = pytest.mark.skipif(not chromium_available(), reason="needs /usr/bin/chromium")


def mp4_bytes(payload: int = 200_000) -> bytes:
    """An ISO base media file as cameras write it: ftyp box, then the media data (random here)."""
    ftyp = struct.pack(">I4s4sI", 24, b"ftyp", b"isom", 0x200) + b"isomavc1"
    return ftyp + struct.pack(">I4s", 8 + payload, b"mdat") + os.urandom(payload)


def webm_bytes(payload: int = 200_000) -> bytes:
    """A Matroska/WebM file: EBML header naming the webm DocType, then a segment (random here)."""
    doctype = b"\x42\x82\x84webm"
    header = b"\x1a\x45\xdf\xa3" + bytes([0x80 | len(doctype)]) + doctype
    return header + b"\x18\x53\x80\x67\x01\xff\xff\xff\xff\xff\xff\xff" + os.urandom(payload)


PDF = b"%PDF-1.4\n% a document, bigger than the 64 KiB the worker looks at first\n" + os.urandom(150_000)


@pytest.fixture(scope="module")
def browser():
    """A fresh profile per module (its first options page is slow to render: the first policy read)."""
    with extension_browser() as started:
        yield started


def open_page(browser, site, settings, locked=False):
    browser.reset(**settings)
    if locked:  # the parental lock, as the options page sets it
        browser.worker.evaluate("async () => chrome.storage.local.set({ pin: await PhotoShieldPin.makePinRecord('2468') })")
    site.clear()
    page = browser.context.new_page()
    page.goto(site.origin + "/")
    return page


@pytest.mark.parametrize("name, mime, make", [
    ("clip.mp4", "video/mp4", mp4_bytes),
    ("holiday.jpg", "image/jpeg", webm_bytes),  # a video named like a photo is still a video
    ("notes.txt", "text/plain", mp4_bytes),
], ids=["mp4", "webm-named-jpg", "mp4-named-txt"])
def test_video_is_blocked_on_a_locked_profile(browser, site, shield_server, tmp_path, name, mime, make):
    page = open_page(browser, site, paired(shield_server, videoAction="ask"), locked=True)
    page.set_input_files("#js-input", files=[{"name": name, "mimeType": mime, "buffer": make()}])
    text = expect_blocked(page, site, "video_blocked")
    assert "it was not protected" in text
    assert notice(page).locator("button[data-choice=original]").count() == 0
    assert page.evaluate("document.getElementById('js-input').files.length") == 0
    page.close()


def test_videos_are_protected_by_default_locked_or_not(browser):
    resolved = browser.worker.evaluate("() => PhotoShieldSettings.resolve({}, { lockedProfile: true }, null)")
    assert resolved["settings"]["videoAction"] == "protect"
    assert browser.worker.evaluate("() => PhotoShieldSettings.resolve({}, {}, null)")["settings"]["videoAction"] == "protect"
    policy = browser.worker.evaluate("() => PhotoShieldSettings.resolve({ videoAction: 'protect' }, { videoAction: 'block' }, null)")
    assert policy["settings"]["videoAction"] == "block" and "videoAction" in policy["managedKeys"]


@pytest.mark.parametrize("answer", ["original", "dismiss"])
def test_video_is_asked_about_on_an_unlocked_profile(browser, site, shield_server, tmp_path, answer):
    video = webm_bytes()
    page = open_page(browser, site, paired(shield_server, videoAction="ask"))
    page.set_input_files("#js-input", write_file(tmp_path, "party.webm", video))
    text = expect_blocked(page, site, "video_ask")
    assert "it was not protected" in text
    notice(page).locator(f"button[data-choice={answer}]:enabled").click()
    if answer == "original":
        (sent,) = only_upload(site).files()
        assert sent.filename == "party.webm" and sent.data == video
    else:
        assert_nothing_uploaded(site, 1.0)
    page.close()


def test_video_the_page_uploads_itself_is_asked_about(browser, site, shield_server):
    # A body with no declared type reaches the worker through the page-world network hooks.
    page = open_page(browser, site, paired(shield_server, videoAction="ask"))
    page_upload(page, "fetch-blob", mp4_bytes(), "", "clip")
    expect_blocked(page, site, "video_ask")
    notice(page).locator("button[data-choice=dismiss]").click()
    page.wait_for_function("document.getElementById('status').textContent.startsWith('error:fetch-blob')")
    assert_nothing_uploaded(site, 0.3)
    page.close()


def test_documents_are_allowed_by_default(browser, site, shield_server, tmp_path):
    text = b"just some notes\n" * 100
    page = open_page(browser, site, paired(shield_server))
    page.set_input_files("#js-input", [write_file(tmp_path, "doc.pdf", PDF), write_file(tmp_path, "notes.txt", text),
                                       ASTRONAUT])
    files = only_upload(site).files()
    assert [(f.filename, f.data) for f in files[:2]] == [("doc.pdf", PDF), ("notes.txt", text)]
    assert_protected(files[2].data)
    assert notice(page).count() == 0
    page.close()


@pytest.mark.parametrize("locked", [False, True], ids=["unlocked", "locked"])
def test_documents_blocked_by_the_setting(browser, site, shield_server, tmp_path, locked):
    page = open_page(browser, site, paired(shield_server, otherFileAction="block"), locked=locked)
    page.set_input_files("#js-input", write_file(tmp_path, "doc.pdf", PDF))
    expect_blocked(page, site, "file_blocked")
    assert notice(page).locator("button[data-choice=original]").count() == 0
    page.close()


def test_documents_asked_about_by_the_setting(browser, site, shield_server, tmp_path):
    page = open_page(browser, site, paired(shield_server, otherFileAction="ask"))
    page.set_input_files("#js-input", write_file(tmp_path, "doc.pdf", PDF))
    expect_blocked(page, site, "file_ask")
    notice(page).locator("button[data-choice=original]:enabled").click()
    assert only_upload(site).files()[0].data == PDF
    page.close()


def test_unanswered_question_means_do_not_send(browser, site, shield_server, tmp_path):
    page = open_page(browser, site, paired(shield_server, videoAction="ask"))
    page.set_input_files("#js-input", write_file(tmp_path, "party.webm", webm_bytes()))
    expect_blocked(page, site, "video_ask")
    # Two minutes pass in the page's virtual time (every world of the page, the notice's too).
    cdp = browser.context.new_cdp_session(page)
    cdp.send("Emulation.setVirtualTimePolicy", {"policy": "advance", "budget": 125000})
    notice(page).wait_for(state="detached", timeout=15000)
    cdp.send("Emulation.setVirtualTimePolicy", {"policy": "advance"})
    cdp.detach()
    assert_nothing_uploaded(site, 1.0)
    assert page.evaluate("document.getElementById('js-input').files.length") == 0
    page.close()
