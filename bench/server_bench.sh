#!/usr/bin/env bash
# The reward server under load (bench/server_bench.py): builds the release binary, makes sure wrk
# is there, and runs the benchmark on 127.0.0.1. Arguments go to server_bench.py, e.g.
#   bash bench/server_bench.sh --seconds 60 --connections 8 --batch 64
# Needs: python3 (standard library only) and wrk (Debian/Ubuntu: apt-get install wrk; macOS:
# brew install wrk). Run as root on Debian, the script installs wrk itself.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
if ! command -v wrk >/dev/null; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
  else
    echo "server_bench: needs wrk (apt-get install wrk, or brew install wrk)" >&2
    exit 1
  fi
fi
(cd "$root" && cargo build --release -p mixed-r1 --quiet)
exec python3 "$here/server_bench.py" "$@"
