#!/usr/bin/env bash
# Generates, checks and lints the eventgate contract (protos/).
#
#   tools/protogen.sh           regenerate the checked-in Go stubs
#   tools/protogen.sh check     fail if the checked-in stubs differ from a fresh generation,
#                               if `buf lint` finds anything, or if the contract breaks main
#
# Tools are pinned and installed on first use into the user's cache folder, keyed by version:
# buf from npm (it ships a prebuilt binary in the package), the Go plugins from the module proxy.
set -euo pipefail

BUF_VERSION=1.75.0
PROTOC_GEN_GO_VERSION=v1.36.12      # keep equal to google.golang.org/protobuf in go.mod
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/eventgate/tools

install_buf() {
  local dir=$cache/buf-$BUF_VERSION
  if [ ! -x "$dir/node_modules/.bin/buf" ]; then
    echo "protogen: installing buf $BUF_VERSION from npm into $dir" >&2
    mkdir -p "$dir"
    npm install --silent --no-audit --no-fund --prefix "$dir" "@bufbuild/buf@$BUF_VERSION" >&2
  fi
  BUF=$dir/node_modules/.bin/buf
}

install_go_plugin() { # module@version -> $cache/<name>-<version>/<name>
  local pkg=$1 version=$2 name=${1##*/}
  local dir=$cache/$name-$version
  if [ ! -x "$dir/$name" ]; then
    echo "protogen: installing $pkg@$version into $dir" >&2
    GOBIN=$dir GOFLAGS=-mod=mod go install "$pkg@$version"
  fi
  PATH=$dir:$PATH
}

install_buf
install_go_plugin google.golang.org/protobuf/cmd/protoc-gen-go "$PROTOC_GEN_GO_VERSION"
install_go_plugin google.golang.org/grpc/cmd/protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_VERSION"
export PATH

generate() { # out-dir
  (cd "$root/protos" && "$BUF" generate --template buf.gen.yaml -o "$1")
}

case "${1:-generate}" in
  generate)
    generate "$root/protos"
    ;;
  check)
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    generate "$tmp"
    (cd "$root/protos" && find gateways -name '*.pb.go') | sort >"$tmp/checked-in"
    (cd "$tmp" && find gateways -name '*.pb.go') | sort >"$tmp/generated"
    if ! diff -u "$tmp/checked-in" "$tmp/generated" ||
      ! diff -ru -x '*.proto' -x BUILD.bazel -x checked-in -x generated "$root/protos/gateways" "$tmp/gateways"; then
      echo "protogen: checked-in stubs are stale: run tools/protogen.sh and commit the result" >&2
      exit 1
    fi
    (cd "$root/protos" && "$BUF" format --diff --exit-code)
    (cd "$root/protos" && "$BUF" lint)
    # Compare against main when the clone has it (a shallow CI clone of main compares to itself).
    if git -C "$root" rev-parse --verify --quiet main >/dev/null; then
      (cd "$root" && "$BUF" breaking protos --against ".git#branch=main,subdir=protos")
    else
      echo "protogen: no local main branch: buf breaking skipped" >&2
    fi
    echo "protogen: stubs fresh, lint clean, no breaking change against main"
    ;;
  *)
    echo "usage: $0 [generate|check]" >&2
    exit 2
    ;;
esac
