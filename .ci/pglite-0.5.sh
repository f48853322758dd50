#!/usr/bin/env bash
# PGlite's other supported line (issue 16: 0.6.x, the one the main run tests,
# and 0.5.x): test/pglite.test.ts and test/pglite-crash.test.ts again with
# @electric-sql/pglite 0.5.17 (the last 0.5 release when this was written), in
# a scratch copy of this built checkout whose node_modules are hard links of
# these but for that one package, so this checkout keeps 0.6.x. Called by
# .ci/run after the matrix; about 2.5 minutes here.
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.5.17
scratch=$(mktemp -d /tmp/untorn-pglite-0.5-XXXXXX)
trap 'rm -rf "$scratch"' EXIT
git ls-files -z | xargs -0 cp --parents -t "$scratch"
cp -a build dist "$scratch/"
cp -al node_modules "$scratch/node_modules"
rm -rf "$scratch/node_modules/@electric-sql/pglite"
mkdir "$scratch/pkg"
(cd "$scratch/pkg" && npm init -y >/dev/null && npm install --no-audit --no-fund --silent "@electric-sql/pglite@$version")
mv "$scratch/pkg/node_modules/@electric-sql/pglite" "$scratch/node_modules/@electric-sql/pglite"
got=$(node -p "require('$scratch/node_modules/@electric-sql/pglite/package.json').version")
[ "$got" = "$version" ] || { echo "pglite-0.5: installed $got, not $version" >&2; exit 1; }
echo "pglite-0.5: the PGlite tests on @electric-sql/pglite $got"
cd "$scratch"
UNTORN_REQUIRE_FS=1 node_modules/.bin/vitest run test/pglite.test.ts test/pglite-crash.test.ts
