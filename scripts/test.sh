#!/usr/bin/env bash
# Sets everything up (Python packages, Debian's Chromium and Firefox ESR, npm puppeteer-core for the browser
# tests), then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
# Debian's browsers (never a downloaded one): Chromium and Firefox ESR for the extension tests; xvfb (xvfb-run,
# with xauth) for the Firefox tests that need a real window (its headless clipboard holds text only).
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/firefox-esr ] || [ ! -x /usr/bin/xvfb-run ] || [ ! -x /usr/bin/xauth ]; then
  SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium firefox-esr xvfb xauth
fi
# puppeteer-core drives firefox-esr (tests/firefox/); PUPPETEER_SKIP_DOWNLOAD: it must not fetch a browser.
if [ ! -d node_modules/puppeteer-core ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --silent
fi
# Browser tests must run here, never skip silently: a missing browser is a failure.
export SHIELD_REQUIRE_BROWSER=1
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
