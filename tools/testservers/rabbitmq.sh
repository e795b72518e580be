#!/usr/bin/env bash
# tools/testservers/rabbitmq.sh: runs a private RabbitMQ node on 127.0.0.1 for the AMQP tests,
# directly (not as a system service), with all its state in a temporary directory. Installs
# Debian's rabbitmq-server on first use (without starting the system service).
#
#   rabbitmq.sh start [--watch-pid PID]   start a node on free loopback ports; print
#                                         `export EVENTGATE_AMQP_URL=amqp://guest:guest@127.0.0.1:PORT/`
#                                         and `export EVENTGATE_AMQP_CTL=DIR/env` (for eval);
#                                         with --watch-pid, the node stops when PID exits
#   rabbitmq.sh restart [CTL]             restart the broker (stop_app/start_app) on the same
#                                         port and data (durable queues and persistent messages stay)
#   rabbitmq.sh stop [CTL]                stop the node and its epmd, remove the directory
#
# CTL is the env file that start printed; it defaults to $EVENTGATE_AMQP_CTL.
# A node is ready in 5-7 s; start one per test run, not per test.
set -euo pipefail

log() { echo "rabbitmq.sh: $*" >&2; }
die() { log "$*"; exit 1; }

RABBIT_BIN=/usr/lib/rabbitmq/bin

as_root() { if [[ "$(id -u)" == 0 ]]; then "$@"; else sudo "$@"; fi; }

ensure_installed() {
  [[ -x "$RABBIT_BIN/rabbitmq-server" ]] && return
  log "installing Debian rabbitmq-server (first use) ..."
  # RUNLEVEL=1 keeps invoke-rc.d from starting the system service: the tests run their own node.
  as_root env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y --no-install-recommends rabbitmq-server >&2 \
    || { as_root apt-get update >&2 && as_root env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y --no-install-recommends rabbitmq-server >&2; }
  [[ -x "$RABBIT_BIN/rabbitmq-server" ]] || die "rabbitmq-server is not installed at $RABBIT_BIN"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port prints a port in 20000-44999 that nothing listens on. The distribution port
# stays below 55535 because the CLI tools listen on it + 10000..10010.
free_port() {
  local p
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 25000))
    if ! port_in_use "$p" && [[ " ${TAKEN:-} " != *" $p "* ]]; then
      TAKEN="${TAKEN:-} $p"
      echo "$p"
      return
    fi
  done
  die "no free port found"
}

# write_env DIR: the environment both the server and rabbitmqctl need to find this node.
write_env() {
  local dir=$1 amqp=$2 dist=$3 epmd=$4
  cat >"$dir/env" <<EOF
export HOME='$dir/home'
export RABBITMQ_NODENAME='eventgate$amqp@localhost'
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
export RABBITMQ_NODE_PORT=$amqp
export RABBITMQ_DIST_PORT=$dist
export ERL_EPMD_ADDRESS=127.0.0.1
export ERL_EPMD_PORT=$epmd
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS='-kernel inet_dist_use_interface {127,0,0,1}'
export RABBITMQ_CONFIG_FILE='$dir/rabbitmq.conf'
export RABBITMQ_ADVANCED_CONFIG_FILE='$dir/advanced.config'
export RABBITMQ_CONF_ENV_FILE='$dir/rabbitmq-env.conf'
export RABBITMQ_ENABLED_PLUGINS_FILE='$dir/enabled_plugins'
export RABBITMQ_MNESIA_BASE='$dir/mnesia'
export RABBITMQ_LOG_BASE='$dir/log'
export RABBITMQ_PID_FILE='$dir/rabbitmq.pid'
export EVENTGATE_AMQP_PORT=$amqp
EOF
}

# run_node DIR: starts the server detached from our stdout (a test process reading our output
# must not wait for the node) and waits until it accepts AMQP connections.
run_node() {
  local dir=$1
  # shellcheck disable=SC1091
  (source "$dir/env" && exec setsid "$RABBIT_BIN/rabbitmq-server" </dev/null >>"$dir/server.out" 2>&1) &
  echo $! >"$dir/launcher.pid"
  local start=$SECONDS port
  port="$(source "$dir/env" && echo "$EVENTGATE_AMQP_PORT")"
  # Polling the port and the log costs nothing; a rabbitmqctl call costs seconds of CPU.
  until port_in_use "$port" && grep -qs 'Server startup complete' "$dir/log/eventgate$port@localhost.log"; do
    if ! kill -0 "$(cat "$dir/launcher.pid")" 2>/dev/null; then
      tail -20 "$dir/server.out" >&2
      die "rabbitmq-server exited during startup (log: $dir/log)"
    fi
    ((SECONDS - start < 90)) || die "rabbitmq-server not ready within 90s (log: $dir/log)"
    sleep 0.1
  done
  log "node ready in $((SECONDS - start))s"
}

# stop_node DIR: SIGTERM is a graceful shutdown for RabbitMQ (durable queues and persistent
# messages are on disk after it), and costs no CLI start-up unlike rabbitmqctl stop.
stop_node() {
  local dir=$1 pid
  for f in rabbitmq.pid launcher.pid; do
    pid="$(cat "$dir/$f" 2>/dev/null || true)"
    [[ -n "$pid" ]] && kill -TERM "$pid" 2>/dev/null || true
  done
  local start=$SECONDS
  for f in rabbitmq.pid launcher.pid; do
    pid="$(cat "$dir/$f" 2>/dev/null || true)"
    [[ -n "$pid" ]] || continue
    while kill -0 "$pid" 2>/dev/null; do
      if ((SECONDS - start > 30)); then kill -KILL "$pid" 2>/dev/null || true; break; fi
      sleep 0.1
    done
  done
  rm -f "$dir/rabbitmq.pid" "$dir/launcher.pid"
}

kill_epmd() {
  local dir=$1
  # shellcheck disable=SC1091
  (source "$dir/env" && epmd -kill >/dev/null 2>&1) || true
}

ctl_dir() {
  local ctl=${1:-${EVENTGATE_AMQP_CTL:-}}
  [[ -n "$ctl" && -f "$ctl" ]] || die "no node: pass the env file that start printed, or set EVENTGATE_AMQP_CTL"
  dirname "$ctl"
}

cmd_start() {
  local watch=""
  if [[ "${1:-}" == --watch-pid ]]; then watch=${2:?--watch-pid needs a PID}; fi
  ensure_installed
  local dir amqp dist epmd
  dir="$(mktemp -d "${TMPDIR:-/tmp}/eventgate-rabbitmq.XXXXXX")"
  mkdir -p "$dir/home" "$dir/mnesia" "$dir/log"
  amqp=$(free_port) dist=$(free_port) epmd=$(free_port)
  write_env "$dir" "$amqp" "$dist" "$epmd"
  # The tests connect as guest over loopback; the default would allow that only from localhost
  # by name, and the management plugins stay off to start fast and open no other port.
  printf 'loopback_users = none\nlisteners.tcp.default = 127.0.0.1:%s\n' "$amqp" >"$dir/rabbitmq.conf"
  echo '[].' >"$dir/advanced.config"
  echo '[].' >"$dir/enabled_plugins"
  : >"$dir/rabbitmq-env.conf"
  run_node "$dir"
  if [[ -n "$watch" ]]; then
    # The watchdog outlives a test process that crashed or timed out, and stops its node.
    setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; [[ -d "$2" ]] && "$0" stop "$2/env"' \
      "$(readlink -f "${BASH_SOURCE[0]}")" "$watch" "$dir" </dev/null >/dev/null 2>&1 &
  fi
  echo "export EVENTGATE_AMQP_URL=amqp://guest:guest@127.0.0.1:$amqp/"
  echo "export EVENTGATE_AMQP_CTL=$dir/env"
}

cmd_restart() {
  local dir
  dir="$(ctl_dir "${1:-}")"
  # The broker application restarts inside the running Erlang VM: every connection is closed,
  # the listener goes away, and durable queues and persistent messages are recovered from
  # disk, as in a restart of the node. The VM itself stays, so the node keeps belonging to
  # whoever ran `start`: a node started again by a test process would end with it (Bazel
  # reaps every descendant of a test).
  # shellcheck disable=SC1091
  (source "$dir/env" && "$RABBIT_BIN/rabbitmqctl" -q stop_app && "$RABBIT_BIN/rabbitmqctl" -q start_app) >&2 \
    || die "restart of the broker application failed (log: $dir/log)"
  local port
  port="$(source "$dir/env" && echo "$EVENTGATE_AMQP_PORT")"
  port_in_use "$port" || die "broker restarted but port $port does not answer (log: $dir/log)"
  log "broker application restarted"
}

cmd_stop() {
  local dir
  dir="$(ctl_dir "${1:-}")"
  stop_node "$dir"
  kill_epmd "$dir"
  rm -rf "$dir"
}

case "${1:-}" in
  start) shift; cmd_start "$@" ;;
  restart) shift; cmd_restart "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  -h|--help|"") sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' ;;
  *) die "unknown command: $1 (try --help)" ;;
esac
