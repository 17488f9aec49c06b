#!/usr/bin/env bash
# Builds the zip a browser store takes (Chrome Web Store, addons.mozilla.org) from extension/.
# Usage: scripts/package-extension.sh [--store chrome|firefox|self]   -> dist/photo-shield-extension-<store>-<version>.zip
#   self (default): the manifest as it is, with its fixed key, for installing by policy (docs/EXTENSION.md).
#   chrome: without the "key" field, which the Chrome Web Store refuses (the store gives its own id; start the
#           server with --allow-origin chrome-extension://<that id>).
#   firefox: as self; Firefox ignores "key" and uses browser_specific_settings.gecko.id.
set -euo pipefail
cd "$(dirname "$0")/.."
STORE=self
[ "${1:-}" = "--store" ] && STORE=${2:?"--store needs chrome, firefox or self"}
case "$STORE" in chrome|firefox|self) ;; *) echo "package-extension: unknown store '$STORE'" >&2; exit 2;; esac
PYTHON=$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)
"$PYTHON" - "$STORE" <<'PY'
import json, sys, zipfile
from pathlib import Path

store = sys.argv[1]
source = Path("extension")
manifest = json.loads((source / "manifest.json").read_text(encoding="utf-8"))
if store == "chrome":
    manifest.pop("key")
out = Path("dist") / f"photo-shield-extension-{store}-{manifest['version']}.zip"
out.parent.mkdir(exist_ok=True)
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
    for path in sorted(source.rglob("*")):
        name = path.relative_to(source).as_posix()
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(source).parts):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # same input, same zip
            info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, 0o644 << 16
            data = json.dumps(manifest, indent=2).encode() if name == "manifest.json" else path.read_bytes()
            archive.writestr(info, data)
print(out)
PY
