#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: installs what the tests need, builds, runs every test project.
set -euo pipefail
root=$(cd "$(dirname "$0")" && pwd)
cd "$root"
scripts/prerequisites.sh test
mkdir -p artifacts
log=artifacts/test.log
set +e
dotnet test --solution AttrCloak.Streaming.sln -c Release --no-progress --output detailed 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One plain closing line for CI and humans: "N passed, N failed, N skipped".
awk '/^ *failed: *[0-9]+/{f+=$2} /^ *succeeded: *[0-9]+/{p+=$2} /^ *skipped: *[0-9]+/{s+=$2} END{printf "%d passed, %d failed, %d skipped\n", p, f, s}' \
  <(sed -n '/Test run summary/,$p' "$log")
exit "$status"
