#!/usr/bin/env bash
# The README's run command: the whole path on loopback, without Kubernetes. It starts
#   - the calendar gateway server   (127.0.0.1:9330)
#   - the sensor sink               (127.0.0.1:9300, prints each CloudEvent it receives)
#   - the gateway-client, local mode: the Gateway and the event-source ConfigMap from
#     deploy/examples/calendar/, the ConfigMap file watched for changes
# and runs until Ctrl-C. Edit deploy/examples/calendar/event-source.yaml while it runs to add
# or remove event sources live. Logs of the gateway and the client go to $bin/*.log.
#
# Binaries are built with the Go toolchain into the user's cache folder.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

bin=${XDG_CACHE_HOME:-$HOME/.cache}/eventgate/demo-bin
examples=deploy/examples/calendar

echo "demo: building the calendar gateway, the gateway-client and the sensor into $bin" >&2
mkdir -p "$bin"
# grpcnotrace: the build tags of the shipped binaries (.bazelrc).
CGO_ENABLED=0 go build -tags grpcnotrace -o "$bin/" ./services/gateways/calendar ./services/gateway-client ./services/sensor ./tools/gwcat

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

GATEWAY_SERVER_HOST=127.0.0.1 GATEWAY_SERVER_PORT=9330 GATEWAY_NAME=calendar-gateway \
  "$bin/calendar" 2>"$bin/calendar.log" &
pids+=($!)
"$bin/sensor" --http 127.0.0.1:9300 &
pids+=($!)
"$bin/gwcat" health --addr 127.0.0.1:9330 --dial-timeout 10s >/dev/null || {
  echo "demo: the calendar gateway did not come up; its log:" >&2
  cat "$bin/calendar.log" >&2
  exit 1
}
"$bin/gateway-client" --gateway "$examples/gateway.yaml" --event-sources "$examples/event-source.yaml" \
  --sensor calendar-sensor=http://127.0.0.1:9300/ 2>"$bin/gateway-client.log" &
pids+=($!)
echo "demo: events arrive below (one line each); status: curl 127.0.0.1:9301/status; Ctrl-C to stop" >&2
wait -n "${pids[@]}"
