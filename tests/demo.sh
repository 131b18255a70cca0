#!/usr/bin/env bash
# make demo: checks the minimal example config, then starts s2s-proxy with it on loopback ports for
# a few seconds, shows that both listeners answer, and stops it with SIGTERM.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
PROXY=$BUILD/s2s-proxy
CONFIG=config-examples/minimal.toml

echo "== $PROXY --check-config --config $CONFIG"
"$PROXY" --check-config --config "$CONFIG"

echo
echo "== the effective config with two command-line overrides (first lines)"
"$PROXY" --print-config --config "$CONFIG" --listen.s2s.0.ip_address=127.0.0.1 --s2s.default_policy=deny | head -12

S2S_PORT=25269 LOCAL_PORT=25270
echo
echo "== starting s2s-proxy on 127.0.0.1:$S2S_PORT (public s2s) and 127.0.0.1:$LOCAL_PORT (local link)"
"$PROXY" --config "$CONFIG" --general.loglevel=info \
  --listen.s2s.0.ip_address=127.0.0.1 --listen.s2s.0.port=$S2S_PORT --listen.local.0.port=$LOCAL_PORT &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for port in $S2S_PORT $LOCAL_PORT; do
  for _ in $(seq 50); do
    if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then echo "   port $port answers"; break; fi
    sleep 0.1
  done
done
sleep 1
echo "== stopping it (SIGTERM)"
kill -TERM $pid
wait $pid
echo "== s2s-proxy exited with status $?"
