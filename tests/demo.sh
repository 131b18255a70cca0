#!/usr/bin/env bash
# make demo: checks the example configs, then federates two real Prosody servers through two
# s2s-proxies on loopback (throwaway CA, dnsmasq), sends a message each way with real clients and
# prints the path each took; everything started is stopped again.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}

echo "== $BUILD/s2s-proxy --check-config on the example configs"
for f in config-examples/*.toml; do "$BUILD/s2s-proxy" --check-config --config "$f"; done
echo
if [ "$(id -u)" != 0 ]; then
  echo "The federation demo runs Prosody under its own user: run make demo as root (or with sudo)." >&2
  exit 1
fi
BUILD="$BUILD" /usr/bin/python3 tests/integration/demo.py
