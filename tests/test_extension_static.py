"""Checks of the extension's files that need no browser: manifest, fixed id, locales, policy schema, no remote code."""

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest

EXTENSION = Path(__file__).resolve().parent.parent / "extension"
EXTENSION_ID = "kcbncmfikphjokbejdopkgddbliakibd"


def load(name):
    return json.loads((EXTENSION / name).read_text(encoding="utf-8"))


def chrome_id(key_b64: str) -> str:
    digest = hashlib.sha256(base64.b64decode(key_b64)).hexdigest()[:32]
    return "".join(chr(ord("a") + int(c, 16)) for c in digest)


def test_manifest_key_gives_the_fixed_id():
    manifest = load("manifest.json")
    assert chrome_id(manifest["key"]) == EXTENSION_ID
    published = Path("/tmp/ext_pub.b64")
    if published.exists():
        assert manifest["key"] == published.read_text().strip()


def test_manifest_works_for_chromium_and_firefox():
    manifest = load("manifest.json")
    assert manifest["manifest_version"] == 3
    assert manifest["browser_specific_settings"]["gecko"]["id"]
    background = manifest["background"]
    assert background["service_worker"] and background["scripts"][-1] == background["service_worker"]
    assert "http://127.0.0.1/*" in manifest["host_permissions"]
    assert manifest["storage"]["managed_schema"] == "managed_schema.json"
    assert manifest["default_locale"] == "en"
    referenced = [*background["scripts"], manifest["action"]["default_popup"], manifest["options_ui"]["page"],
                  manifest["storage"]["managed_schema"], *manifest["icons"].values()]
    for script in manifest["content_scripts"]:
        referenced += script["js"]
        assert script["matches"] == ["http://*/*", "https://*/*"] and script["all_frames"]
    for path in referenced:
        assert (EXTENSION / path).is_file(), path
    worlds = [script.get("world", "ISOLATED") for script in manifest["content_scripts"]]
    assert worlds == ["ISOLATED", "MAIN"]


def messages(lang):
    return load(f"_locales/{lang}/messages.json")


def test_english_and_french_have_the_same_messages():
    english, french = messages("en"), messages("fr")
    assert english.keys() == french.keys()
    for key in english:
        assert set(english[key].get("placeholders", {})) == set(french[key].get("placeholders", {})), key


def test_every_message_the_code_uses_exists():
    english = messages("en")
    used = set()
    for path in EXTENSION.rglob("*"):
        if path.suffix in {".js", ".html", ".json"} and "_locales" not in path.parts:
            text = path.read_text(encoding="utf-8")
            used |= set(re.findall(r'data-i18n="(\w+)"', text))
            used |= set(re.findall(r"\bt\('(\w+)'", text))
            used |= set(re.findall(r"__MSG_(\w+)__", text))
    reasons = re.search(r"const REASONS = \[(.*?)\];", (EXTENSION / "content/notice.js").read_text(), re.S).group(1)
    for reason in re.findall(r"'(\w+)'", reasons):
        used |= {f"reason_{reason}", f"todo_{reason}"}
    assert {key for key in used if not key.endswith("_")} - english.keys() == set()


def test_policy_schema_covers_every_setting():
    schema = load("managed_schema.json")
    settings_js = (EXTENSION / "common/settings.js").read_text()
    fields = re.search(r"const FIELDS = \{(.*?)\n  \};", settings_js, re.S).group(1)
    keys = set(re.findall(r"^\s{4}(\w+): \{", fields, re.M))
    assert set(schema["properties"]) == keys | {"lockedProfile"}


@pytest.mark.parametrize("path", sorted(p.relative_to(EXTENSION).as_posix()
                                        for p in EXTENSION.rglob("*") if p.suffix in {".js", ".html", ".css"}))
def test_no_remote_code_or_resources(path):
    text = (EXTENSION / path).read_text(encoding="utf-8")
    for url in re.findall(r"https?://[^\s'\"`)]+", text):
        assert url.startswith(("http://127.0.0.1", "http://*/", "https://*/")), url
    assert not re.search(r"\beval\(|new Function\(|innerHTML\s*=", text)


def test_content_scripts_never_call_the_server_themselves():
    for path in (EXTENSION / "content").glob("*.js"):
        text = path.read_text(encoding="utf-8")
        assert "127.0.0.1" not in text and "XMLHttpRequest(" not in text, path
    bridge = (EXTENSION / "content/bridge.js").read_text(encoding="utf-8")
    assert "fetch(" not in bridge


def test_pairing_help_names_the_command_that_prints_the_token():
    """By hand, the token comes from `shield pair` (`shield serve` only starts the server); a notice tells a
    person to use the one-click button, named as the options page names it."""
    texts = [messages(lang)["pairingHelp"]["message"] for lang in ("en", "fr")]
    texts.append(load("managed_schema.json")["properties"]["token"]["description"])
    for text in texts:
        assert "shield pair" in text, text
    for lang in ("en", "fr"):
        assert messages(lang)["welcomeConnect"]["message"] in messages(lang)["todo_not_paired"]["message"]
