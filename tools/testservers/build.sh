#!/usr/bin/env bash
# tools/testservers/build.sh: provides the servers that tests start for real but that are too
# heavy to build per test run, and prints where they are. Idempotent: what is already there is
# reused in milliseconds; the first kube-apiserver build takes 10-15 minutes on 2 cores.
#
#   kube-apiserver  built from tools/testservers/kube (k8s.io/kubernetes from the Go module
#                   proxy) into $CACHE/kube-apiserver-<version>/kube-apiserver
#   etcd            Debian etcd-server (apt-get), or, where apt has none (or with
#                   EVENTGATE_ETCD_FROM_SOURCE=1), built from the same module into
#                   $CACHE/etcd-<version>/etcd
#
# $CACHE is ${XDG_CACHE_HOME:-$HOME/.cache}/eventgate/testservers; pkg/testenv looks there
# (and at EVENTGATE_KUBE_APISERVER / EVENTGATE_ETCD, which win).
#
#   tools/testservers/build.sh        build or install what is missing, print the paths
#   tools/testservers/build.sh --env  the same, but print `export VAR=path` lines for eval
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MOD="$HERE/kube"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/eventgate/testservers"

print_env=false
case "${1:-}" in
  "") ;;
  --env) print_env=true ;;
  -h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "tools/testservers/build.sh: unknown argument: $1 (try --help)" >&2; exit 2 ;;
esac

log() { echo "testservers: $*" >&2; }

# The versions are the helper module's: the kubernetes release it requires and the etcd
# server that release requires.
modversion() { awk -v m="$1" '$1 == m && $2 ~ /^v/ { print $2; exit }' "$MOD/go.mod"; }
KUBE_VERSION="$(modversion k8s.io/kubernetes)"
ETCD_VERSION="$(modversion go.etcd.io/etcd/server/v3)"
[[ -n "$KUBE_VERSION" && -n "$ETCD_VERSION" ]] || { log "cannot read versions from $MOD/go.mod"; exit 1; }

if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then export PATH="/usr/local/go/bin:$PATH"; fi
# Build exactly the checked-in module: no workspace, no toolchain switch, no go.sum edits.
export GOWORK=off GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0

# gobuild OUT PKG [ldflags]: builds PKG of the helper module to OUT atomically, so that an
# interrupted or concurrent build never leaves a half-written binary at OUT.
gobuild() {
  local out=$1 pkg=$2 ldflags="-s -w ${3:-}" start=$SECONDS
  mkdir -p "$(dirname "$out")"
  local tmp
  tmp="$(mktemp "$out.XXXXXX")"
  log "building $(basename "$out") from $pkg (first time: several minutes) ..."
  if ! (cd "$MOD" && go build -trimpath -ldflags "$ldflags" -o "$tmp" "$pkg"); then
    rm -f "$tmp"
    return 1
  fi
  chmod 755 "$tmp"
  mv -f "$tmp" "$out"
  log "built $out in $((SECONDS - start))s"
}

ensure_kube_apiserver() {
  local out="$CACHE/kube-apiserver-$KUBE_VERSION/kube-apiserver"
  if [[ ! -x "$out" ]]; then
    local minor="${KUBE_VERSION#v*.}"
    minor="${minor%%.*}"
    local v=k8s.io/component-base/version
    gobuild "$out" . "-X $v.gitVersion=$KUBE_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean"
  fi
  KUBE_APISERVER="$out"
}

as_root() { if [[ "$(id -u)" == 0 ]]; then "$@"; else sudo "$@"; fi; }

apt_candidate() {
  apt-cache policy etcd-server 2>/dev/null | awk '$1 == "Candidate:" && $2 != "(none)" { print $2 }'
}

ensure_etcd() {
  if [[ "${EVENTGATE_ETCD_FROM_SOURCE:-}" != 1 ]]; then
    if [[ -x /usr/bin/etcd ]]; then ETCD=/usr/bin/etcd; return; fi
    # A fresh machine may have no package lists yet: refresh once before giving up on apt.
    if [[ -z "$(apt_candidate)" ]] && command -v apt-get >/dev/null; then
      as_root apt-get update -qq >&2 || true
    fi
    if [[ -n "$(apt_candidate)" ]]; then
      log "installing Debian etcd-server $(apt_candidate) ..."
      export DEBIAN_FRONTEND=noninteractive
      if ! as_root apt-get install -y -qq --no-install-recommends etcd-server >&2; then
        as_root apt-get update -qq >&2
        as_root apt-get install -y -qq --no-install-recommends etcd-server >&2
      fi
      ETCD=/usr/bin/etcd
      return
    fi
    log "apt has no etcd-server: building etcd $ETCD_VERSION from the Go module proxy"
  fi
  local out="$CACHE/etcd-$ETCD_VERSION/etcd"
  [[ -x "$out" ]] || gobuild "$out" go.etcd.io/etcd/server/v3
  ETCD="$out"
}

ensure_etcd
ensure_kube_apiserver

if $print_env; then
  printf 'export EVENTGATE_KUBE_APISERVER=%q\nexport EVENTGATE_ETCD=%q\n' "$KUBE_APISERVER" "$ETCD"
else
  echo "kube-apiserver $KUBE_VERSION: $KUBE_APISERVER"
  echo "etcd: $ETCD ($("$ETCD" --version 2>/dev/null | head -1))"
fi
