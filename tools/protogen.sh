#!/usr/bin/env bash
# Generates, checks and lints the eventgate contract (protos/).
#
#   tools/protogen.sh           regenerate the checked-in Go stubs
#   tools/protogen.sh check     fail if the checked-in stubs differ from a fresh generation,
#                               if `buf lint` finds anything, or if the contract breaks main
#   tools/protogen.sh stubs [LANG...]
#                               generate stubs for other languages into protos/gen/<lang>/
#                               (git-ignored); LANG is python, ts, cpp or java, all by default
#
# Tools are pinned and installed on first use into the user's cache folder, keyed by version:
# buf from npm (it ships a prebuilt binary in the package), the Go plugins from the module proxy,
# ts-proto from npm. protoc and the gRPC plugins for Python, C++ and Java come from Debian
# (apt-get, as root), with the libraries that compile or import their output.
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

install_go_tools() {
  install_buf
  install_go_plugin google.golang.org/protobuf/cmd/protoc-gen-go "$PROTOC_GEN_GO_VERSION"
  install_go_plugin google.golang.org/grpc/cmd/protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_VERSION"
  export PATH
}

generate() { # out-dir
  (cd "$root/protos" && "$BUF" generate --template buf.gen.yaml -o "$1")
}

# --- stubs for other languages -------------------------------------------------------------
# Pinned generators. Debian's versions are those of its stable release (bookworm); a machine
# with other versions still generates, with a warning, since the output may then differ.
TS_PROTO_VERSION=2.18.0
GRPC_JS_VERSION=1.14.7              # the runtime ts-proto's grpc-js services import
PROTOC_DEB_VERSION=3.21.            # protobuf-compiler: protoc with python, pyi, cpp, java built in
GRPC_DEB_VERSION=1.51.              # protobuf-compiler-grpc: grpc_python_plugin, grpc_cpp_plugin
GRPC_JAVA_DEB_VERSION=1.41.         # protobuf-compiler-grpc-java-plugin: grpc_java_plugin
STUB_LANGS=(python ts cpp java)

# Debian packages per language: the generators, and what compiles or imports their output
# (so that a generated stub is usable right away, and CI can build clients from it).
# Java: libgrpc-java depends on none of grpc-java's own dependencies (protobuf, guava, netty,
# perfmark), and the stubs' @javax.annotation.Generated is in geronimo-annotation since Java 11.
debs_for() {
  case $1 in
    python) echo protobuf-compiler libprotobuf-dev protobuf-compiler-grpc python3-grpcio python3-protobuf python3-yaml ;;
    ts) echo protobuf-compiler libprotobuf-dev ;;
    cpp) echo protobuf-compiler libprotobuf-dev protobuf-compiler-grpc libgrpc++-dev pkg-config g++ ;;
    java) echo protobuf-compiler libprotobuf-dev protobuf-compiler-grpc-java-plugin libgrpc-java libprotobuf-java libnetty-java libperfmark-java libguava-java libgeronimo-annotation-1.3-spec-java default-jdk-headless ;;
  esac
}

install_debs() { # package... (installs only those missing; quick when all are there)
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return
  if [ "$(id -u)" != 0 ]; then
    echo "protogen: missing Debian packages: ${missing[*]} (run: sudo apt-get install -y --no-install-recommends ${missing[*]})" >&2
    exit 1
  fi
  echo "protogen: installing ${missing[*]} with apt-get" >&2
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2; then
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
  fi
}

install_ts_proto() {
  local dir=$cache/ts-proto-$TS_PROTO_VERSION
  if [ ! -x "$dir/node_modules/.bin/protoc-gen-ts_proto" ] || [ ! -d "$dir/node_modules/@grpc/grpc-js" ]; then
    echo "protogen: installing ts-proto $TS_PROTO_VERSION and @grpc/grpc-js $GRPC_JS_VERSION from npm into $dir" >&2
    mkdir -p "$dir"
    npm install --silent --no-audit --no-fund --save-exact --prefix "$dir" \
      "ts-proto@$TS_PROTO_VERSION" "@grpc/grpc-js@$GRPC_JS_VERSION" >&2
  fi
  TS_PROTO_DIR=$dir
}

deb_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo none; }

print_version() { # name version pinned-prefix
  local warn=
  case $2 in "$3"* | *:"$3"*) ;; *) warn="  (WARNING: pinned $3*, output may differ)" ;; esac
  printf 'protogen:   %-54s %s%s\n' "$1" "$2" "$warn"
}

stubs() { # [lang...]
  local langs=("$@") lang debs=()
  [ ${#langs[@]} -gt 0 ] || langs=("${STUB_LANGS[@]}")
  for lang in "${langs[@]}"; do
    case " ${STUB_LANGS[*]} " in *" $lang "*) ;; *)
      echo "protogen: unknown language $lang (known: ${STUB_LANGS[*]}; for another, see the README's \"Stubs for your language\")" >&2
      exit 2 ;;
    esac
    # shellcheck disable=SC2207
    debs+=($(debs_for "$lang"))
  done
  install_debs "${debs[@]}"

  local gen=$root/protos/gen
  echo "protogen: generators"
  print_version "protoc (protobuf-compiler)" "$(protoc --version | awk '{print $2}') (deb $(deb_version protobuf-compiler))" "$PROTOC_DEB_VERSION"
  for lang in "${langs[@]}"; do
    local out=$gen/$lang tmp
    mkdir -p "$gen"
    tmp=$(mktemp -d "$gen/.$lang.XXXXXX")
    chmod 755 "$tmp"
    local protoc=(protoc -I "$root/protos" gateways/eventing.proto)
    case $lang in
      python)
        print_version "grpc_python_plugin (protobuf-compiler-grpc)" "$(deb_version protobuf-compiler-grpc)" "$GRPC_DEB_VERSION"
        # Output is the package `gateways`: put protos/gen/python on PYTHONPATH and
        # `from gateways import eventing_pb2, eventing_pb2_grpc`.
        "${protoc[@]}" --python_out="$tmp" --pyi_out="$tmp" --grpc_python_out="$tmp" \
          --plugin=protoc-gen-grpc_python="$(command -v grpc_python_plugin)"
        : >"$tmp/gateways/__init__.py"
        ;;
      ts)
        install_ts_proto
        print_version "ts-proto (npm)" "$(node -p "require('$TS_PROTO_DIR/node_modules/ts-proto/package.json').version")" "$TS_PROTO_VERSION"
        print_version "@grpc/grpc-js (npm, runtime)" "$(node -p "require('$TS_PROTO_DIR/node_modules/@grpc/grpc-js/package.json').version")" "$GRPC_JS_VERSION"
        print_version "@bufbuild/protobuf (npm, runtime, ts-proto's)" "$(node -p "require('$TS_PROTO_DIR/node_modules/@bufbuild/protobuf/package.json').version")" ""
        "${protoc[@]}" --plugin=protoc-gen-ts_proto="$TS_PROTO_DIR/node_modules/.bin/protoc-gen-ts_proto" \
          --ts_proto_out="$tmp" --ts_proto_opt=outputServices=grpc-js,esModuleInterop=true,env=node
        # The stubs import @grpc/grpc-js and @bufbuild/protobuf (the user's package.json lists
        # both; no node_modules link here: buf would read the .proto files inside it).
        ;;
      cpp)
        print_version "grpc_cpp_plugin (protobuf-compiler-grpc)" "$(deb_version protobuf-compiler-grpc)" "$GRPC_DEB_VERSION"
        "${protoc[@]}" --cpp_out="$tmp" --grpc_out="$tmp" --plugin=protoc-gen-grpc="$(command -v grpc_cpp_plugin)"
        ;;
      java)
        print_version "grpc_java_plugin (protobuf-compiler-grpc-java-plugin)" "$(deb_version protobuf-compiler-grpc-java-plugin)" "$GRPC_JAVA_DEB_VERSION"
        "${protoc[@]}" --java_out="$tmp" --grpc-java_out="$tmp" --plugin=protoc-gen-grpc-java="$(command -v grpc_java_plugin)"
        ;;
    esac
    rm -rf "$out"
    mv "$tmp" "$out"
    echo "protogen: $lang stubs in ${out#"$root"/}"
  done
}

case "${1:-generate}" in
  generate)
    install_go_tools
    generate "$root/protos"
    ;;
  check)
    install_go_tools
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
  stubs)
    shift
    stubs "$@"
    ;;
  *)
    echo "usage: $0 [generate|check|stubs [python|ts|cpp|java]...]" >&2
    exit 2
    ;;
esac
