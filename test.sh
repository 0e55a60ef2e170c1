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
# CI shows only the end of this output: repeat each failed test's block (its message, stack and captured output,
# the indented lines under its result line) here, so the failure is visible without the whole log.
awk '
  /^failed / { shown = 1; lines = 0; print "---"; print; next }
  /^[^ ]/    { shown = 0 }
  shown && lines++ < 80 { print }' "$log"
# One plain closing line for CI and humans: "N passed, N failed, N skipped". With --output detailed every test
# reports exactly one result line at column 0 ("passed|failed|skipped <test> ..."); each assembly's summary line
# ("<dll> (tfm) passed (time)") is printed twice (on completion and again under "Test run summary") and carries
# no counts, so the result lines are what we count. Cross-checked against the run's own totals (the last
# "Test run summary" block); a mismatch is reported on stderr.
awk '
  /^passed /  { p++ } /^failed /  { f++ } /^skipped / { s++ }
  /^Test run summary/ { inSummary = 1; tp = tf = ts = "" }
  inSummary && /^  succeeded: *[0-9]+/ { tp = $2 } inSummary && /^  failed: *[0-9]+/ { tf = $2 } inSummary && /^  skipped: *[0-9]+/ { ts = $2 }
  END {
    printf "%d passed, %d failed, %d skipped\n", p, f, s
    if (tp != "" && (tp != p || tf != f || ts != s))
      printf "warning: dotnet test totals say %s passed, %s failed, %s skipped\n", tp, tf, ts > "/dev/stderr"
  }' "$log"
exit "$status"
