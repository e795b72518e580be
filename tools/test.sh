#!/usr/bin/env bash
# Runs every check and every test of the repository: the README's test command, and what
# CI runs (.ci/run). Installs what it needs on first use (see tools/protogen.sh).
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

step "go test -race ./..."
go test -race -count=1 ./...
