#!/usr/bin/env bash
# Sets everything up (Python packages, Debian's Chromium for the browser tests), then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
if [ ! -x /usr/bin/chromium ]; then
  SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium
fi
# Browser tests must run here, never skip silently: a missing browser is a failure.
export SHIELD_REQUIRE_BROWSER=1
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
