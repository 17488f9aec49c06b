#!/usr/bin/env bash
# Sets everything up, then starts the local server on 127.0.0.1:47321 (Ctrl+C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "serve: starting Photo Shield (Ctrl+C stops it)..."
exec .venv/bin/shield serve "$@"
