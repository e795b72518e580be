#!/usr/bin/env bash
# tools/setup.sh: prepares this checkout for the offline Bazel build.
#
# Idempotent and cheap when already done (one stamp comparison); tools/bazel
# runs it before every Bazel command. On a fresh Debian machine it:
#   1. apt-get installs Bazel 4.2.3 (bazel-bootstrap) and Debian's Bazel rule
#      sets (skylib, platforms, rules_cc);
#   2. fetches rules_go and bazel-gazelle from the Go module proxy
#      (go mod download), copies them writable into third_party/, vendors
#      gazelle's own dependencies and applies third_party/patches/<name>/*.patch;
#   3. copies Debian's rules_cc into third_party/rules_cc and patches it;
#   4. builds the gazelle binary from the patched copy into the user's cache;
#   5. writes third_party/generated/ (git-ignored): the Go SDK path for
#      WORKSPACE, a bazelrc fragment with the disk cache, a gazelle symlink.
#
# Only the Go module proxy and apt are used. Options:
#   --force         redo everything even if the stamp matches
#   --print-gazelle print the path of the gazelle binary (after setting up)
set -euo pipefail

RULES_GO_VERSION=v0.34.0
GAZELLE_VERSION=v0.26.0
APT_PACKAGES=(bazel-bootstrap bazel-skylib bazel-platforms bazel-rules-cc bazel-rules-java)
DEBIAN_RULES_CC=/usr/share/bazel/rules/cc
DEBIAN_SKYLIB=/usr/share/bazel/tools/skylib
DEBIAN_RULES_JAVA=/usr/share/bazel/rules/java
BAZEL_BIN=/usr/bin/bazel-4

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TP="$ROOT/third_party"
GEN="$TP/generated"
CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/eventgate"
DISK_CACHE="$CACHE_DIR/bazel-disk-cache"

force=0
print_gazelle=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    --print-gazelle) print_gazelle=1 ;;
    *) echo "tools/setup.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

log() { echo "setup: $*" >&2; }
die() { echo "setup: ERROR: $*" >&2; exit 1; }

# The go command: the one on PATH, else the usual install location.
GO="$(command -v go || true)"
[[ -n "$GO" ]] || GO=/usr/local/go/bin/go
[[ -x "$GO" ]] || die "no Go toolchain found (looked on PATH and at /usr/local/go/bin/go)"
read -r GOROOT_PATH GO_VERSION < <("$GO" env GOROOT GOVERSION | paste -sd' ')

# Everything the set-up produces depends on these inputs; the stamp holds
# their hash. Changing a version, a patch, this script, the Go toolchain or
# the cache location redoes the set-up.
stamp_key() {
  {
    echo "rules_go=$RULES_GO_VERSION gazelle=$GAZELLE_VERSION"
    echo "go=$GO_VERSION goroot=$GOROOT_PATH cache=$CACHE_DIR"
    cat "${BASH_SOURCE[0]}"
    find "$TP/patches" -type f -name '*.patch' | LC_ALL=C sort | xargs cat
  } | sha256sum | cut -c1-16
}
KEY="$(stamp_key)"
STAMP="$GEN/setup.stamp"
# The gazelle binary depends on fewer inputs: keep it across other changes.
GAZELLE_KEY="$({ echo "gazelle=$GAZELLE_VERSION go=$GO_VERSION goroot=$GOROOT_PATH"
  find "$TP/patches/bazel_gazelle" -type f -name '*.patch' | LC_ALL=C sort | xargs cat
} | sha256sum | cut -c1-16)"
GAZELLE_BIN="$CACHE_DIR/gazelle/$GAZELLE_VERSION-$GAZELLE_KEY/gazelle"

up_to_date() {
  [[ $force == 0 && -f "$STAMP" && "$(cat "$STAMP")" == "$KEY" && -x "$BAZEL_BIN" && -x "$GAZELLE_BIN" \
     && -f "$TP/rules_go/WORKSPACE" && -f "$TP/bazel_gazelle/WORKSPACE" && -f "$TP/rules_cc/WORKSPACE" ]]
}
if up_to_date; then
  [[ $print_gazelle == 0 ]] || echo "$GAZELLE_BIN"
  exit 0
fi

# Serialise set-ups of this checkout (two Bazel commands started at once), and
# skip the work if another one finished it while we waited.
mkdir -p "$GEN"
exec 9>"$GEN/setup.lock"
flock 9
if up_to_date; then
  [[ $print_gazelle == 0 ]] || echo "$GAZELLE_BIN"
  exit 0
fi

log "setting up the offline Bazel build (key $KEY)"

# --- 1. Debian packages -------------------------------------------------------
as_root() {
  if [[ $(id -u) == 0 ]]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root to run: $*"; fi
}
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v patch >/dev/null || missing+=(patch)
if (( ${#missing[@]} )); then
  log "apt-get install ${missing[*]}"
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2; then
    log "apt-get install failed; running apt-get update and retrying"
    as_root apt-get update -q >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
  fi
fi
[[ -x "$BAZEL_BIN" ]] || die "$BAZEL_BIN missing after installing bazel-bootstrap"
[[ -d "$DEBIAN_RULES_CC" ]] || die "$DEBIAN_RULES_CC missing after installing bazel-rules-cc"
[[ -d "$DEBIAN_SKYLIB" ]] || die "$DEBIAN_SKYLIB missing after installing bazel-skylib"
[[ -d "$DEBIAN_RULES_JAVA" ]] || die "$DEBIAN_RULES_JAVA missing after installing bazel-rules-java"

# --- 2./3. rule sets in third_party/ ----------------------------------------------
# Go commands below work on other modules: no workspace, no toolchain switch,
# no flags from the environment.
export GOFLAGS= GOWORK=off GOTOOLCHAIN=local
WORK="$(mktemp -d)"
trap 'chmod -R u+w "$WORK" 2>/dev/null || true; rm -rf "$WORK"' EXIT

module_dir() { # module@version -> directory in the module cache
  (cd "$WORK" && "$GO" mod download -json "$1") |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p'
}

# install_tree NAME MODULE_PATH SOURCE_DIR [PREPARE_FUNC]: copies SOURCE_DIR
# writable to third_party/NAME, runs PREPARE_FUNC in the copy, applies the
# patches, and swaps the result into place.
install_tree() {
  local name=$1 module_path=$2 src=$3 prepare=${4:-}
  local tmp="$WORK/$name"
  rm -rf "$tmp"
  cp -R "$src" "$tmp"
  chmod -R u+w "$tmp"
  if [[ -n "$prepare" ]]; then (cd "$tmp" && "$prepare"); fi
  local p
  for p in "$TP/patches/$name"/*.patch; do
    [[ -e "$p" ]] || continue
    patch -s -p1 -d "$tmp" --no-backup-if-mismatch < "$p" || die "patch $p does not apply"
  done
  # These trees hold .go files. Without a go.mod of their own they would belong
  # to this repository's module, and `go build ./...` (vet, test) would try to
  # build them. A go.mod makes each a separate module that ./... skips.
  if [[ ! -f "$tmp/go.mod" ]]; then
    printf '// Written by tools/setup.sh: keeps this tree out of the main module.\nmodule %s\n' \
      "$module_path" > "$tmp/go.mod"
  fi
  rm -rf "$TP/$name"
  mv "$tmp" "$TP/$name"
  log "third_party/$name ready"
}

vendor_gazelle() {
  # The module zip holds no vendor/ tree; go_repository builds gazelle in
  # GOPATH mode from this copy, so vendor its dependencies (module proxy).
  GOFLAGS=-mod=mod "$GO" mod vendor >&2
}

dir="$(module_dir "github.com/bazelbuild/rules_go@$RULES_GO_VERSION")"
[[ -d "$dir" ]] || die "go mod download github.com/bazelbuild/rules_go@$RULES_GO_VERSION failed"
install_tree rules_go github.com/bazelbuild/rules_go "$dir"

dir="$(module_dir "github.com/bazelbuild/bazel-gazelle@$GAZELLE_VERSION")"
[[ -d "$dir" ]] || die "go mod download github.com/bazelbuild/bazel-gazelle@$GAZELLE_VERSION failed"
install_tree bazel_gazelle github.com/bazelbuild/bazel-gazelle "$dir" vendor_gazelle

install_tree rules_cc github.com/bazelbuild/rules_cc "$DEBIAN_RULES_CC"

# --- 4. gazelle binary --------------------------------------------------------------
if [[ ! -x "$GAZELLE_BIN" ]]; then
  log "building gazelle $GAZELLE_VERSION (patched) into $(dirname "$GAZELLE_BIN")"
  mkdir -p "$(dirname "$GAZELLE_BIN")"
  (cd "$TP/bazel_gazelle" && CGO_ENABLED=0 GOFLAGS="-mod=vendor -buildvcs=false" "$GO" build -trimpath \
     -o "$GAZELLE_BIN.tmp" ./cmd/gazelle)
  mv "$GAZELLE_BIN.tmp" "$GAZELLE_BIN"
  # Drop binaries of older keys.
  find "$CACHE_DIR/gazelle" -mindepth 1 -maxdepth 1 -type d ! -name "$GAZELLE_VERSION-$GAZELLE_KEY" \
    -exec rm -rf {} + 2>/dev/null || true
fi

# --- 5. generated files -------------------------------------------------------
mkdir -p "$GEN" "$DISK_CACHE"
cat > "$GEN/BUILD.bazel" <<'EOF'
# Generated by tools/setup.sh; git-ignored.
exports_files(glob(["*"]))
EOF
cat > "$GEN/go_sdk.bzl" <<EOF
# Generated by tools/setup.sh from \`go env GOROOT\`; git-ignored.
GO_SDK_PATH = "$GOROOT_PATH"
GO_VERSION = "$GO_VERSION"
EOF
cat > "$GEN/setup.bazelrc" <<EOF
# Generated by tools/setup.sh; git-ignored. Imported by .bazelrc.
build --disk_cache=$DISK_CACHE
EOF
ln -sfn "$GAZELLE_BIN" "$GEN/gazelle"
echo "$KEY" > "$STAMP"
log "done"
[[ $print_gazelle == 0 ]] || echo "$GAZELLE_BIN"
