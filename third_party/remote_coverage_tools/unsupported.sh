#!/bin/sh
echo "remote_coverage_tools is a local stub in this offline build: bazel coverage is not supported; use go test -cover." >&2
exit 1
