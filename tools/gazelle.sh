#!/usr/bin/env bash
# tools/gazelle.sh: regenerates the Bazel files derived from the Go code.
#
#   tools/gazelle.sh               go_deps.bzl from go.mod/go.sum (update-repos),
#                                  then every BUILD.bazel of the Go packages
#   tools/gazelle.sh --repos-only  go_deps.bzl only
#   tools/gazelle.sh --check       regenerate both in a temporary copy of the
#                                  tree and fail, showing the diff, if the
#                                  checked-out files differ (CI)
#
# Also reachable as `./tools/bazel run //:gazelle` (//:gazelle-update-repos,
# //:gazelle-check). Uses the patched gazelle v0.26.0 built by tools/setup.sh.
# Go modules are looked up through the Go module proxy (GOPROXY).
set -euo pipefail

if [[ -n "${BUILD_WORKSPACE_DIRECTORY:-}" ]]; then
  ROOT="$BUILD_WORKSPACE_DIRECTORY" # under `bazel run`
else
  ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fi

mode=update
case "${1:-}" in
  "") ;;
  --check) mode=check ;;
  --repos-only) mode=repos ;;
  -h|--help) sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "tools/gazelle.sh: unknown argument: $1 (try --help)" >&2; exit 2 ;;
esac

GAZELLE="$("$ROOT/tools/setup.sh" --print-gazelle)"

# The go command that gazelle runs (go list -m, go mod download) must see this
# module only: no workspace file, no toolchain switch.
export GOWORK=off GOTOOLCHAIN=local
if ! command -v go >/dev/null; then export PATH="/usr/local/go/bin:$PATH"; fi

# regenerate DIR: update go_deps.bzl, then the BUILD files, in the tree at DIR.
regenerate() {
  local dir=$1
  (
    cd "$dir"
    # Quiet: gazelle logs harmless notes for some third-party layouts.
    "$GAZELLE" update-repos -repo_root="$dir" \
      -from_file=go.mod \
      -to_macro=go_deps.bzl%go_dependencies \
      -build_file_proto_mode=disable_global \
      -prune
    if [[ $mode != repos ]]; then
      "$GAZELLE" update -repo_root="$dir" -mode=fix "$dir"
    fi
  )
}

# The files this script owns: every BUILD file outside third_party/ and the
# Bazel output links, plus go_deps.bzl and WORKSPACE.
generated_files() {
  (cd "$1" && {
    find . \( -path ./third_party -o -path './bazel-*' -o -path ./.git \) -prune \
      -o \( -name BUILD.bazel -o -name BUILD \) -type f -print
    echo ./go_deps.bzl
    echo ./WORKSPACE
  } | sed 's|^\./||' | LC_ALL=C sort -u)
}

if [[ $mode != check ]]; then
  regenerate "$ROOT"
  exit 0
fi

# --check: regenerate in a copy of the working tree (tracked files plus new,
# not ignored ones), then compare.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
copy="$tmp/src"
mkdir -p "$copy"
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' f; do [[ -e "$f" || -L "$f" ]] && printf '%s\0' "$f"; done |
  tar --null -T - -cf -) | tar -xf - -C "$copy"
mode=update regenerate "$copy" 2>"$tmp/gazelle.log" || { cat "$tmp/gazelle.log" >&2; exit 1; }

stale=0
: > "$tmp/diff"
while IFS= read -r f; do
  if ! diff -u --label "a/$f" --label "b/$f" \
        "$( [[ -f "$ROOT/$f" ]] && echo "$ROOT/$f" || echo /dev/null)" \
        "$( [[ -f "$copy/$f" ]] && echo "$copy/$f" || echo /dev/null)" >> "$tmp/diff"; then
    stale=1
  fi
done < <(sort -u <(generated_files "$ROOT") <(generated_files "$copy"))

if [[ $stale != 0 ]]; then
  cat "$tmp/diff"
  echo >&2
  echo "tools/gazelle.sh --check: the Bazel files above are stale (a/ = checked out, b/ = what gazelle generates)." >&2
  echo "Run tools/gazelle.sh (or ./tools/bazel run //:gazelle) and commit the result." >&2
  exit 1
fi
echo "tools/gazelle.sh --check: BUILD files, go_deps.bzl and WORKSPACE are up to date." >&2
