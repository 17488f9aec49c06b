"""The Chromium policy that keeps Photo Shield's access to websites granted (docs/EXTENSION.md, "Access to
websites"): an extension force-installed by ExtensionSettings cannot have its site access withheld;
chrome://extensions' own call is refused (an unpacked copy accepts it: test_extension_status.py).

Chromium reads machine policy from /etc/chromium/policies, which every Chromium on the machine watches:
the browser here runs in a mount namespace of its own (`unshare -m`, as root) with a private policy folder.
The packed copy is signed with a throwaway key, so its id is not the store's.
"""

import hashlib
import http.server
import json
import os
import shutil
import subprocess
import time
from functools import partial
from pathlib import Path

import pytest

from browser import CHROMIUM, EXTENSION_DIR, LoopbackServer, chromium_available

POLICY_FOLDER = Path("/etc/chromium/policies")


def namespaces_available() -> bool:
    return (os.geteuid() == 0 and shutil.which("unshare") is not None and shutil.which("openssl") is not None
            and subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0)


pytestmark = pytest.mark.skipif(
    not (chromium_available() and namespaces_available()) and not os.environ.get("SHIELD_REQUIRE_BROWSER"),
    reason="needs /usr/bin/chromium, root, unshare and openssl (a private policy folder)")


def pack(folder: Path) -> tuple[Path, str]:
    """A .crx of the extension (without the manifest's key) signed with a new key, and its extension id."""
    source = folder / "extension"
    shutil.copytree(EXTENSION_DIR, source)
    manifest = json.loads((source / "manifest.json").read_text())
    manifest.pop("key")
    (source / "manifest.json").write_text(json.dumps(manifest))
    key = folder / "key.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", f"--pack-extension={source}",
                    f"--pack-extension-key={key}"], capture_output=True, timeout=60)
    public = subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
                            check=True, capture_output=True).stdout
    extension_id = "".join(chr(ord("a") + int(c, 16)) for c in hashlib.sha256(public).hexdigest()[:32])
    return folder / "extension.crx", extension_id


class QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


WITHHOLD = """(id) => new Promise((resolve) => chrome.developerPrivate.updateExtensionConfiguration(
    { extensionId: id, hostAccess: 'ON_CLICK' },
    () => resolve(chrome.runtime.lastError ? chrome.runtime.lastError.message : 'changed')))"""


def test_force_installed_extension_keeps_its_site_access_in_chromium(tmp_path):
    from playwright.sync_api import sync_playwright

    crx, extension_id = pack(tmp_path)
    server = LoopbackServer(partial(QuietFiles, directory=str(tmp_path)))
    try:
        update_url = f"http://127.0.0.1:{server.port}/update.xml"
        (tmp_path / "update.xml").write_text(
            "<?xml version='1.0' encoding='UTF-8'?><gupdate xmlns='http://www.google.com/update2/response' "
            f"protocol='2.0'><app appid='{extension_id}'><updatecheck codebase='http://127.0.0.1:{server.port}/"
            f"{crx.name}' version='{json.loads((EXTENSION_DIR / 'manifest.json').read_text())['version']}'/>"
            "</app></gupdate>")
        policies = tmp_path / "policies"
        (policies / "managed").mkdir(parents=True)
        (policies / "managed" / "photo-shield.json").write_text(json.dumps({"ExtensionSettings": {
            extension_id: {"installation_mode": "force_installed", "update_url": update_url}}}))
        POLICY_FOLDER.mkdir(parents=True, exist_ok=True)  # the mount point (an empty folder changes nothing)
        launcher = tmp_path / "chromium"
        launcher.write_text("#!/bin/sh\nexec unshare -m sh -c 'mount --bind \"$0\" " + str(POLICY_FOLDER)
                            + " && exec " + CHROMIUM + " \"$@\"' " + str(policies) + " \"$@\"\n")
        launcher.chmod(0o700)
        with sync_playwright() as driver:
            # Extensions on, and the network on (the policy's update URL is on loopback).
            context = driver.chromium.launch_persistent_context(
                str(tmp_path / "profile"), executable_path=str(launcher), headless=True,
                ignore_default_args=["--disable-extensions", "--disable-background-networking"],
                args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync", "--disable-component-update"])
            try:
                page = context.new_page()
                page.goto("chrome://extensions")
                answer = "not installed"
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    answer = page.evaluate(WITHHOLD, extension_id)
                    if "No such extension" not in answer:
                        break
                    time.sleep(0.5)
            finally:
                context.close()
    finally:
        server.stop()
    assert answer == "Cannot change host permissions for the given extension."
    assert not (POLICY_FOLDER / "managed" / "photo-shield.json").exists()  # the real folder never saw it
