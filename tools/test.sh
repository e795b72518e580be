#!/usr/bin/env bash
# Runs every check and every test of the repository: the README's test command, and what
# CI runs (.ci/run). Installs what it needs on first use: Bazel and the rules through
# tools/bazel (tools/setup.sh), buf, protoc and the protoc plugins through tools/protogen.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n== %s\n' "$*"; }

step "formatting and modules"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change: $unformatted (run gofmt -w)" >&2
  exit 1
fi
go mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy" >&2; exit 1; }
go vet ./...

step "contract: stubs regenerate without diff, buf lint, buf breaking against main"
tools/protogen.sh check

step "stubs for Python, TypeScript, C++ and Java (protos/gen/; the polyglot tests build on them)"
tools/protogen.sh stubs

step "API: deepcopy and CRDs regenerate without diff"
tools/codegen.sh check

step "Bazel: BUILD files and go_deps.bzl fresh (gazelle)"
tools/gazelle.sh --check

step "test servers: kube-apiserver + etcd (built once, cached by version), RabbitMQ"
# The tests start kube-apiserver, etcd and the in-process brokers themselves; RabbitMQ takes
# seconds to start, so one node serves the whole run and stops when this script ends.
eval "$(tools/testservers/build.sh --env)"
eval "$(tools/testservers/rabbitmq.sh start --watch-pid $$)"
trap 'tools/testservers/rabbitmq.sh stop >/dev/null 2>&1 || true' EXIT
# The AMQP broker-restart test restarts that node with the same script.
export EVENTGATE_RABBITMQ_SCRIPT="$PWD/tools/testservers/rabbitmq.sh"
# A test whose server is missing fails here instead of skipping.
export EVENTGATE_REQUIRE_TEST_SERVERS=1

step "bazel test //... (builds every binary and image too)"
test_env=()
for v in EVENTGATE_KUBE_APISERVER EVENTGATE_ETCD EVENTGATE_HELM EVENTGATE_KUBECONFORM EVENTGATE_KUBE_SCHEMAS EVENTGATE_MINIO EVENTGATE_AMQP_URL EVENTGATE_AMQP_CTL EVENTGATE_RABBITMQ_SCRIPT EVENTGATE_REQUIRE_TEST_SERVERS; do
  test_env+=("--test_env=$v")
done
tools/bazel test "${test_env[@]}" //...

# Last, so that its summary is the one CI reads: the same tests as Bazel, plus -race.
step "go test -race ./..."
go test -race -count=1 ./...
