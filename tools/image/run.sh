#!/usr/bin/env bash
# The `bazel run` side of go_image (tools/image.bzl): builds the image into the workspace's
# out/images/ and pushes it when asked, e.g.
#   bazel run //services/gateways/calendar:image -- --push 127.0.0.1:5000/eventgate/calendar:latest
#
# Arguments (set by the macro): TOOL DEST BUILD_FLAGS..., then whatever followed `--` on the
# bazel command line. The image is built again here rather than copied from the genrule's
# tarball: the build is reproducible, so it is the same image (same digest), and one command
# both writes and pushes it.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: bazel run //some/package:image [-- --push REGISTRY/REPO:TAG [--insecure]]" >&2
  exit 2
fi
tool="$1" dest="$2"
shift 2

# `bazel run` starts us in the runfiles tree (where TOOL and the binary are) and says where the
# workspace is; run by hand from bazel-bin, the tarball lands under the current directory.
out="${BUILD_WORKSPACE_DIRECTORY:-$PWD}/out/images/$dest.tar"
mkdir -p "$(dirname "$out")"

# The tool logs where the tarball went (and what it pushed) and prints the digest on stdout.
exec "$tool" "$@" --tarball "$out"
