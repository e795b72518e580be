#!/usr/bin/env bash
# `bazel run //:gazelle` (and friends): runs tools/gazelle.sh in the workspace.
set -euo pipefail
: "${BUILD_WORKSPACE_DIRECTORY:?run me with bazel run //:gazelle}"
exec "$BUILD_WORKSPACE_DIRECTORY/tools/gazelle.sh" "$@"
