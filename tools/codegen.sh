#!/usr/bin/env bash
# Generates the Kubernetes API code of eventgate from the Go types in pkg/apis/.
#
#   tools/codegen.sh           regenerate the deepcopy functions (pkg/apis/**/zz_generated.deepcopy.go)
#                              and the CRDs (deploy/helm/eventgate/crds/)
#   tools/codegen.sh check     fail if the checked-in files differ from a fresh generation
#
# controller-gen is pinned and installed on first use into the user's cache folder, keyed by
# version, from the Go module proxy.
set -euo pipefail

CONTROLLER_GEN_VERSION=v0.23.0

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/eventgate/tools
crds=deploy/helm/eventgate/crds

install_controller_gen() {
  local dir=$cache/controller-gen-$CONTROLLER_GEN_VERSION
  if [ ! -x "$dir/controller-gen" ]; then
    echo "codegen: installing controller-gen $CONTROLLER_GEN_VERSION into $dir" >&2
    GOBIN=$dir GOFLAGS=-mod=mod go install "sigs.k8s.io/controller-tools/cmd/controller-gen@$CONTROLLER_GEN_VERSION"
  fi
  CONTROLLER_GEN=$dir/controller-gen
}

generate() { # tree: holds go.mod, go.sum and pkg/apis
  # Remove the old output first: a stale deepcopy file that no longer compiles would stop
  # controller-gen from loading the package it is meant to replace.
  find "$1/pkg/apis" -name zz_generated.deepcopy.go -delete
  rm -rf "${1:?}/$crds"/*.yaml
  (cd "$1" && "$CONTROLLER_GEN" object crd:crdVersions=v1 paths=./pkg/apis/... output:crd:dir="$crds")
}

install_controller_gen

case "${1:-generate}" in
  generate)
    generate "$root"
    ;;
  check)
    # Generate in a copy, so that a check never changes the work tree.
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    cp "$root/go.mod" "$root/go.sum" "$tmp/"
    mkdir -p "$tmp/pkg" "$tmp/$crds"
    cp -R "$root/pkg/apis" "$tmp/pkg/"
    generate "$tmp"
    if ! diff -ru -x BUILD.bazel "$root/pkg/apis" "$tmp/pkg/apis" ||
      ! diff -ru -x BUILD.bazel "$root/$crds" "$tmp/$crds"; then
      echo "codegen: checked-in deepcopy functions or CRDs are stale: run tools/codegen.sh and commit the result" >&2
      exit 1
    fi
    echo "codegen: deepcopy functions and CRDs fresh"
    ;;
  *)
    echo "usage: $0 [generate|check]" >&2
    exit 2
    ;;
esac
