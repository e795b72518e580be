#!/usr/bin/env bash
# tools/testservers/build.sh: provides the servers that tests start for real but that are too
# heavy to build per test run, and the tools that check the Helm chart, and prints where they
# are. Idempotent: what is already there is reused in milliseconds; the first kube-apiserver
# build takes 10-15 minutes on 2 cores, the first helm build about 5.
#
#   kube-apiserver  built from tools/testservers/kube (k8s.io/kubernetes from the Go module
#                   proxy) into $CACHE/kube-apiserver-<version>/kube-apiserver
#   etcd            Debian etcd-server (apt-get), or, where apt has none (or with
#                   EVENTGATE_ETCD_FROM_SOURCE=1), built from the same module into
#                   $CACHE/etcd-<version>/etcd
#   helm            go install helm.sh/helm/v4/cmd/helm into $CACHE/helm-<version>/helm
#   kubeconform     go install github.com/yannh/kubeconform/cmd/kubeconform into
#                   $CACHE/kubeconform-<version>/kubeconform
#   kube-schemas    kubeconform's JSON schemas, generated offline by tools/kubeschema from the
#                   swagger.json of the same k8s.io/kubernetes module and from the chart's CRDs,
#                   into $CACHE/kube-schemas-<version>-<hash of generator and CRDs>/
#   minio           github.com/minio/minio (a pseudo-version: it has no semver tags) built with
#                   third_party/minio's listen fix added by go build -overlay, into
#                   $CACHE/minio-<version>-<hash of the fix>/minio (first time: about 10 minutes)
#
# $CACHE is ${XDG_CACHE_HOME:-$HOME/.cache}/eventgate/testservers; pkg/testenv looks there
# (and at EVENTGATE_KUBE_APISERVER / EVENTGATE_ETCD / EVENTGATE_HELM / EVENTGATE_KUBECONFORM /
# EVENTGATE_KUBE_SCHEMAS / EVENTGATE_MINIO, which win).
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
  -h|--help) sed -n '2,27p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
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

# The chart's tools are not the helper module's: pinned here. Helm 4 is the current major.
HELM_VERSION=v4.3.2
KUBECONFORM_VERSION=v0.8.0
ROOT="$(cd "$HERE/../.." && pwd)"

# goinstall OUT MODULE/PKG VERSION [ldflags]: go install into a temporary GOBIN beside OUT and
# moves the binary into place, so that OUT is either absent or complete.
goinstall() {
  local out=$1 pkg=$2 version=$3 ldflags="-s -w ${4:-}" start=$SECONDS
  mkdir -p "$(dirname "$out")"
  local tmp
  tmp="$(mktemp -d "$out.XXXXXX")"
  log "go install $pkg@$version (first time: minutes) ..."
  # Outside any module: GOFLAGS' -mod applies to the current module only, and there is none.
  if ! (cd "$tmp" && GOFLAGS=-buildvcs=false GOBIN="$tmp" go install -trimpath -ldflags "$ldflags" "$pkg@$version"); then
    rm -rf "$tmp"
    return 1
  fi
  mv -f "$tmp/$(basename "$pkg")" "$out"
  rm -rf "$tmp"
  log "built $out in $((SECONDS - start))s"
}

ensure_helm() {
  HELM="$CACHE/helm-$HELM_VERSION/helm"
  [[ -x "$HELM" ]] || goinstall "$HELM" helm.sh/helm/v4/cmd/helm "$HELM_VERSION" \
    "-X helm.sh/helm/v4/internal/version.version=$HELM_VERSION -X helm.sh/helm/v4/internal/version.gitTreeState=clean"
}

ensure_kubeconform() {
  KUBECONFORM="$CACHE/kubeconform-$KUBECONFORM_VERSION/kubeconform"
  [[ -x "$KUBECONFORM" ]] || goinstall "$KUBECONFORM" github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION" \
    "-X main.version=$KUBECONFORM_VERSION"
}

# The schemas depend on the kubernetes version, on the generator and on the CRDs: a change to
# either makes a new folder (older ones of the same version are removed).
ensure_kube_schemas() {
  local crds=("$ROOT"/deploy/helm/eventgate/crds/*.yaml)
  local hash
  hash="$(cat "$ROOT"/tools/kubeschema/*.go "${crds[@]}" | sha256sum | cut -c1-12)"
  KUBE_SCHEMAS="$CACHE/kube-schemas-$KUBE_VERSION-$hash"
  [[ -f "$KUBE_SCHEMAS/.complete" ]] && return
  local dir
  dir="$(cd "$MOD" && go mod download -json k8s.io/kubernetes | awk -F'"' '$2 == "Dir" { print $4 }')"
  [[ -n "$dir" ]] || { log "cannot download k8s.io/kubernetes $KUBE_VERSION"; return 1; }
  log "generating kubeconform schemas from $dir/api/openapi-spec/swagger.json ..."
  rm -rf "$CACHE/kube-schemas-$KUBE_VERSION-"*
  (cd "$ROOT" && go run ./tools/kubeschema -swagger "$dir/api/openapi-spec/swagger.json" -out "$KUBE_SCHEMAS" "${crds[@]}") >&2
  touch "$KUBE_SCHEMAS/.complete"
}

# MinIO serves its ListenBucketNotification through a response writer without Flush(), so a
# listening client receives nothing; third_party/minio adds the method at build time. go
# build -overlay refuses to add files beneath GOMODCACHE, so the module is copied out first
# and built as the main module (its own go.sum, unmodified).
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c

ensure_minio() {
  local fix="$ROOT/third_party/minio/flush.go.overlay"
  local hash
  hash="$(sha256sum <"$fix" | cut -c1-12)"
  MINIO="$CACHE/minio-$MINIO_VERSION-$hash/minio"
  [[ -x "$MINIO" ]] && return
  local start=$SECONDS dir work
  mkdir -p "$CACHE"
  work="$(mktemp -d "$CACHE/minio-build.XXXXXX")"
  dir="$(cd "$work" && GOFLAGS=-buildvcs=false go mod download -json "github.com/minio/minio@$MINIO_VERSION" | awk -F'"' '$2 == "Dir" { print $4 }')"
  [[ -n "$dir" ]] || { log "cannot download github.com/minio/minio $MINIO_VERSION"; rm -rf "$work"; return 1; }
  cp -R "$dir" "$work/src"
  chmod -R u+w "$work/src"
  printf '{"Replace":{"%s/cmd/eventgate_flush.go":"%s"}}\n' "$work/src" "$fix" >"$work/overlay.json"
  log "building minio $MINIO_VERSION with $fix (first time: about 10 minutes) ..."
  if ! (cd "$work/src" && go build -trimpath -overlay "$work/overlay.json" -ldflags "-s -w" -o "$work/minio" .); then
    rm -rf "$work"
    return 1
  fi
  mkdir -p "$(dirname "$MINIO")"
  mv -f "$work/minio" "$MINIO"
  rm -rf "$work"
  log "built $MINIO in $((SECONDS - start))s"
}

ensure_etcd
ensure_kube_apiserver
ensure_helm
ensure_kubeconform
ensure_kube_schemas
ensure_minio

if $print_env; then
  printf 'export EVENTGATE_KUBE_APISERVER=%q\nexport EVENTGATE_ETCD=%q\n' "$KUBE_APISERVER" "$ETCD"
  printf 'export EVENTGATE_HELM=%q\nexport EVENTGATE_KUBECONFORM=%q\nexport EVENTGATE_KUBE_SCHEMAS=%q\n' "$HELM" "$KUBECONFORM" "$KUBE_SCHEMAS"
  printf 'export EVENTGATE_MINIO=%q\n' "$MINIO"
else
  echo "kube-apiserver $KUBE_VERSION: $KUBE_APISERVER"
  echo "etcd: $ETCD ($("$ETCD" --version 2>/dev/null | head -1))"
  echo "helm $HELM_VERSION: $HELM"
  echo "kubeconform $KUBECONFORM_VERSION: $KUBECONFORM"
  echo "kubeconform schemas ($KUBE_VERSION and the chart's CRDs): $KUBE_SCHEMAS"
  echo "minio $MINIO_VERSION (with third_party/minio's listen fix): $MINIO"
fi
