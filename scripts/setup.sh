#!/usr/bin/env bash
# One-step set-up for a fresh Debian 12 / Ubuntu machine (idempotent, fast when done):
# system libtorch + the OpenMP OpenBLAS, npm packages, the native addon, the TypeScript.
#   scripts/setup.sh          everything the library and its tests need
#   scripts/setup.sh --peer   also Debian's python3-torch, the benchmark peer
set -euo pipefail
cd "$(dirname "$0")/.."

want_peer=0
[ "${1:-}" = "--peer" ] && want_peer=1

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  echo "randmask setup: need root (or sudo) to run: $*" >&2; exit 1; fi; }

missing=()
dpkg_has() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
if ! node scripts/find-libtorch.mjs describe >/dev/null 2>&1; then missing+=(libtorch-dev); fi
if command -v dpkg-query >/dev/null; then
  dpkg_has libopenblas0-openmp || missing+=(libopenblas0-openmp)
  [ $want_peer = 1 ] && { dpkg_has python3-torch || missing+=(python3-torch); }
fi
if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    echo "randmask setup: install libtorch (C++) and an OpenMP BLAS, or set LIBTORCH; missing: ${missing[*]}" >&2
    exit 1
  fi
  echo "randmask setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -q
  as_root apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The pthread OpenBLAS fights torch's OpenMP threads (2x slower, erratic); the
# reference BLAS is ~30x slower. Point libblas/liblapack at the OpenMP build.
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -dumpmachine)
for lib in libblas.so.3 liblapack.so.3; do
  target=/usr/lib/$arch/openblas-openmp/$lib
  name=$lib-$arch
  if [ -e "$target" ] && update-alternatives --query "$name" >/dev/null 2>&1; then
    current=$(update-alternatives --query "$name" | sed -n 's/^Value: //p')
    [ "$current" = "$target" ] || as_root update-alternatives --set "$name" "$target"
  fi
done

if [ ! -d node_modules/node-addon-api ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
[ -f build/Makefile ] || npx node-gyp configure
npx node-gyp build -j "$(nproc)"
npx tsc -p .
