#!/usr/bin/env bash
# The README's run command: starts the calendar gateway server on loopback and shows the
# events of one example event source through gwcat, until Ctrl-C.
#
#   tools/demo.sh [event-source-key]     (default: every-two-seconds)
#
# Binaries are built with the Go toolchain into the user's cache folder; DEMO_PORT picks
# the gateway's port (default 9330).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

key=${1:-every-two-seconds}
port=${DEMO_PORT:-9330}
bin=${XDG_CACHE_HOME:-$HOME/.cache}/eventgate/demo-bin
examples=deploy/examples/calendar/event-source.yaml

echo "demo: building the calendar gateway and gwcat into $bin" >&2
mkdir -p "$bin"
CGO_ENABLED=0 go build -o "$bin/" ./services/gateways/calendar ./tools/gwcat

echo "demo: starting the calendar gateway on 127.0.0.1:$port" >&2
GATEWAY_SERVER_HOST=127.0.0.1 GATEWAY_SERVER_PORT=$port GATEWAY_NAME=calendar-gateway \
  "$bin/calendar" 2>"$bin/calendar.log" &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true' EXIT

"$bin/gwcat" health --addr "127.0.0.1:$port" --dial-timeout 10s >/dev/null || {
  echo "demo: the gateway did not come up; its log:" >&2
  cat "$bin/calendar.log" >&2
  exit 1
}
echo "demo: event source \"$key\" from $examples; one JSON line per event, Ctrl-C to stop" >&2
"$bin/gwcat" start --addr "127.0.0.1:$port" --file "$examples" --key "$key"
