#!/usr/bin/env bash
# Builds the N-API prebuilds that `npm pack` ships (run by the prepack script):
#   prebuilds/linux-x64/untorn.napi.glibc.node     native g++
#   prebuilds/linux-arm64/untorn.napi.glibc.node   Debian's g++-aarch64-linux-gnu
#
# usage: scripts/prebuilds.sh [--out DIR] [ARCH...]     (ARCH: x64, arm64; default both)
#
# Each is built by prebuildify in a temporary copy of binding.gyp and native/,
# so the checkout's own build/ (which node-gyp-build prefers over prebuilds)
# is never replaced by another architecture's binary.
#
# libstdc++ stays a shared library, as for Node itself (node links
# libstdc++.so.6 too, so it is always there). Linking it statically
# (-static-libstdc++ -static-libgcc) was tried: it pulls about 100 objects of
# libstdc++.a, which call arc4random (GLIBC_2.36), _dl_find_object (2.35) and
# pthread_once (2.34), so the addon would need glibc 2.36 instead of 2.28, at
# twice the size. Shared, it needs glibc 2.28 (fcntl64, for the page file's OFD lock; pwritev2 is 2.26) and libstdc++
# GLIBCXX_3.4.29 (GCC 11's, for std::__throw_bad_array_new_length).
#
# Every prebuild is checked: the ELF machine, NEEDED libraries no more than
# libc.so.6 and libstdc++.so.6, and the newest GLIBC_ / GLIBCXX_ symbol
# versions it asks for (at most GLIBC_MAX, GLIBCXX_MAX).
set -euo pipefail
# Everything this prints is progress, on stderr: as npm pack's prepack step its
# stdout would land in npm pack's, whose last line must be the tarball's name.
exec 1>&2
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root"
archs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$(mkdir -p "$2" && cd "$2" && pwd)"; shift 2 ;;
    x64|arm64) archs+=("$1"); shift ;;
    *) echo "prebuilds.sh: unknown argument '$1' (usage: prebuilds.sh [--out DIR] [x64] [arm64])" >&2; exit 2 ;;
  esac
done
[ ${#archs[@]} -gt 0 ] || archs=(x64 arm64)
# fcntl64 (glibc 2.28: the page file's OFD lock) is the newest symbol untorn needs.
GLIBC_MAX=2.28
GLIBCXX_MAX=3.4.29

# node-gyp needs Node's headers: those of the Node that runs this (Debian's
# nodejs and the official tarballs both have include/node), not a download.
if [ -z "${npm_config_nodedir:-}" ]; then
  prefix="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
  [ -f "$prefix/include/node/node_api.h" ] && export npm_config_nodedir="$prefix"
fi
target="$(node -p process.versions.node)"

work="$(mktemp -d "${TMPDIR:-/tmp}/untorn-prebuilds-XXXXXX")"
trap 'rm -rf "$work"' EXIT

for arch in "${archs[@]}"; do
  case "$arch" in
    x64) machine='Advanced Micro Devices X86-64'; cross=() ;;
    arm64)
      machine='AArch64'
      if ! command -v aarch64-linux-gnu-g++ >/dev/null; then
        echo "prebuilds.sh: aarch64-linux-gnu-g++ not found (Debian: apt-get install g++-aarch64-linux-gnu)" >&2
        exit 1
      fi
      cross=(CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ LINK=aarch64-linux-gnu-g++
             AR=aarch64-linux-gnu-ar PREBUILD_STRIP_BIN=aarch64-linux-gnu-strip) ;;
  esac
  src="$work/$arch"
  mkdir -p "$src"
  cp -r "$root/binding.gyp" "$root/native" "$root/package.json" "$src/"
  ln -s "$root/node_modules" "$src/node_modules"
  rm -rf "$out/prebuilds/linux-$arch"
  start=$SECONDS
  (cd "$src" && env "${cross[@]}" \
     JOBS=max \
     "$root/node_modules/.bin/prebuildify" --napi --strip --tag-libc --target "$target" --arch "$arch" --out "$out" >"$work/$arch.log" 2>&1) || {
    cat "$work/$arch.log" >&2
    echo "prebuilds.sh: the linux-$arch build failed" >&2
    exit 1
  }

  file="$(ls "$out/prebuilds/linux-$arch/"*.node)"
  header="$(readelf -h "$file")"
  grep -q "Machine: *$machine" <<<"$header" || { echo "prebuilds.sh: $file is not $machine" >&2; exit 1; }
  needed="$(readelf -d "$file" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort | tr '\n' ' ')"
  for lib in $needed; do
    case "$lib" in libc.so.6|libstdc++.so.6) ;; *) echo "prebuilds.sh: $file needs $lib (only libc.so.6 and libstdc++.so.6 allowed)" >&2; exit 1 ;; esac
  done
  versions="$(readelf -V "$file")"
  newest() { grep -oE "$1_[0-9]+(\.[0-9]+)+" <<<"$versions" | sed "s/$1_//" | sort -V | tail -1; }
  above() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | tail -1)" != "$2" ]; }
  glibc="$(newest GLIBC)" glibcxx="$(newest GLIBCXX)"
  if above "$glibc" "$GLIBC_MAX" || above "${glibcxx:-0}" "$GLIBCXX_MAX"; then
    echo "prebuilds.sh: $file asks for GLIBC_$glibc GLIBCXX_$glibcxx, above GLIBC_$GLIBC_MAX GLIBCXX_$GLIBCXX_MAX" >&2
    exit 1
  fi
  echo "prebuilds.sh: ${file#"$out/"}: $machine, $(stat -c %s "$file") bytes, needs $needed(GLIBC_$glibc, GLIBCXX_$glibcxx at most), $((SECONDS - start)) s"
done
