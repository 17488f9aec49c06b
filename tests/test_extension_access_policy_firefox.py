"""The Firefox policy that keeps Photo Shield's access to websites granted (docs/EXTENSION.md, "Access to
websites"): with ExtensionSettings "force_installed" in policies.json, Firefox ESR installs the add-on from
the file, grants its host permissions, and about:addons offers no way to withdraw them (the toggles are
disabled); without the policy the same toggles can be switched off.

Firefox reads policies.json from its own install folder only, shared by every Firefox on the machine: the
test gives Firefox a private copy of that folder in a mount namespace of its own (`unshare -m`, as root),
so neither the real folder nor any other test's Firefox sees the policy.
"""

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from firefox.driver import EXTENSION_DIR, firefox_available, run_scenarios

GECKO_ID = "photo-shield@photoshield.local"
DISTRIBUTION = Path("/usr/lib/firefox-esr/distribution")


def namespaces_available() -> bool:
    return (os.geteuid() == 0 and shutil.which("unshare") is not None and DISTRIBUTION.is_dir()
            and subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0)


pytestmark = pytest.mark.skipif(
    not (firefox_available() and namespaces_available()) and not os.environ.get("SHIELD_REQUIRE_BROWSER"),
    reason="needs firefox-esr with npm puppeteer-core, root and unshare (a private policies folder)")

# In about:addons: Photo Shield's Permissions tab, each host toggle as [pattern, on, disabled].
HOST_TOGGLES = f"""(async () => {{
  loadView('detail/' + encodeURIComponent('{GECKO_ID}') + '/permissions');
  for (let i = 0; i < 50; i++) {{
    const list = document.querySelector('addon-card addon-permissions-list');
    const toggles = list ? [...list.querySelectorAll('moz-toggle[permission-key]')] : [];
    if (toggles.length) return toggles.map((t) => [t.getAttribute('permission-key'), t.pressed, t.hasAttribute('disabled')]);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }}
  return null;
}})()"""
STEPS = [
    {"extension": "browser.permissions.getAll().then((granted) => granted.origins.sort())"},
    # Firefox's remote agent never reports about:addons as loaded: go on and ask the page.
    {"goto": "about:addons", "optional": True},
    {"sleep": 1000},
    {"evaluate": f"Services.policies.isAddonRequiredByPolicy('{GECKO_ID}')"},
    {"evaluate": HOST_TOGGLES},
]
ORIGINS = ["http://*/*", "http://127.0.0.1/*", "https://*/*"]


def package(folder: Path) -> Path:
    xpi = folder / "photo-shield.xpi"
    with zipfile.ZipFile(xpi, "w") as archive:
        for path in sorted(EXTENSION_DIR.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(EXTENSION_DIR).as_posix())
    return xpi


def test_force_installed_add_on_keeps_its_site_access_in_firefox(tmp_path):
    xpi = package(tmp_path)
    distribution = tmp_path / "distribution"
    shutil.copytree(DISTRIBUTION, distribution)
    (distribution / "policies.json").write_text(json.dumps({"policies": {"ExtensionSettings": {GECKO_ID: {
        "installation_mode": "force_installed", "install_url": xpi.as_uri()}}}}))
    in_private_folder = ("unshare", "-m", "sh", "-c", f'mount --bind "{distribution}" "{DISTRIBUTION}" && exec "$@"', "-")
    (managed,) = run_scenarios([{"settings": {}, "steps": STEPS}], extension=None, launcher=in_private_folder,
                               prefs={"xpinstall.signatures.required": False})
    (free,) = run_scenarios([{"settings": {}, "steps": STEPS}])
    assert not (DISTRIBUTION / "policies.json").exists()  # the real folder never saw it

    assert managed[0] == ORIGINS  # installed by the policy, every host granted
    assert managed[3] is True
    assert sorted(managed[4]) == [["http://*/*", True, True], ["http://127.0.0.1/*", True, True]]  # on, locked
    assert free[0] == ORIGINS
    assert free[3] is False
    assert sorted(free[4]) == [["http://*/*", True, False], ["http://127.0.0.1/*", True, False]]  # on, can be switched off
