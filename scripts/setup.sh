#!/usr/bin/env bash
# One-step set-up for a fresh Debian 12 / Ubuntu machine (idempotent, fast when done):
# a libtorch (see scripts/find-libtorch.mjs for the order) + the OpenMP OpenBLAS,
# npm packages, the native addon, the TypeScript.
#   scripts/setup.sh          everything the library and its tests need
#   scripts/setup.sh --peer   also Debian's python3-torch, the benchmark peer
# Steps already done are skipped: the libtorch choice is remembered in
# build/libtorch.json (probed again when LIBTORCH or PYTHON change, or with
# RANDMASK_RECONFIGURE=1), the addon is rebuilt only when native/ or binding.gyp
# changed, the TypeScript only when a .ts file or tsconfig.json changed.
set -euo pipefail
cd "$(dirname "$0")/.."

want_peer=0
[ "${1:-}" = "--peer" ] && want_peer=1

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  echo "randmask setup: need root (or sudo) to run: $*" >&2; exit 1; fi; }
dpkg_has() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
say() { echo "randmask setup: $*" >&2; }

choice_file=build/libtorch.json
choice_key="LIBTORCH=${LIBTORCH:-} PYTHON=${PYTHON:-}"
configured=0
if [ -f "$choice_file" ] && [ -f build/Makefile ] && [ "${RANDMASK_RECONFIGURE:-0}" != 1 ] &&
   [ "$(node -e 'try{console.log(require(process.argv[1]).key)}catch{}' "$PWD/$choice_file")" = "$choice_key" ]; then
  configured=1
fi

# System packages: only probed until the addon has been configured once.
missing=()
if [ $configured = 0 ] && ! node scripts/find-libtorch.mjs describe >/dev/null 2>&1; then missing+=(libtorch-dev); fi
if command -v dpkg-query >/dev/null; then
  [ $configured = 1 ] || dpkg_has libopenblas0-openmp || missing+=(libopenblas0-openmp)
  [ $want_peer = 1 ] && { dpkg_has python3-torch || missing+=(python3-torch); }
fi
if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    say "install libtorch (C++) and an OpenMP BLAS, or set LIBTORCH; missing: ${missing[*]}"
    exit 1
  fi
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -q
  as_root apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ $configured = 0 ]; then
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
fi

if [ ! -d node_modules/node-addon-api ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund   # the root's install step builds nothing here: scripts/npm-install.mjs
fi

if [ $configured = 0 ]; then
  described=$(node scripts/find-libtorch.mjs describe)
  say "$(node -e '
    const d = JSON.parse(process.argv[1]);
    const why = d.passedOver.length ? ` (${d.passedOver.join("; ")})` : "";
    console.log(`libtorch ${d.version ?? "?"} from ${d.source}: ${d.libdir}${d.cuda ? ", with CUDA" : ""}${why}`);' "$described")"
  npx node-gyp configure
  node -e 'const fs = require("fs"); const [file, key, d] = process.argv.slice(1);
    fs.writeFileSync(file, JSON.stringify({ key, ...JSON.parse(d) }, null, 1) + "\n");' "$choice_file" "$choice_key" "$described"
  rm -f build/Release/randmask_native.node
fi

addon=build/Release/randmask_native.node
if [ ! -f "$addon" ] || [ -n "$(find native binding.gyp -newer "$addon" -print -quit)" ]; then
  npx node-gyp build -j "$(nproc)"
fi

ts_stamp=dist/.tsc-stamp
if [ ! -f "$ts_stamp" ] || [ -n "$(find src test bench tsconfig.json package.json -newer "$ts_stamp" -print -quit)" ]; then
  npx tsc -p .
  touch "$ts_stamp"
fi
