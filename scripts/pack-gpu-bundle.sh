#!/usr/bin/env bash
# Packs what scripts/gpu-check.sh needs on a GPU machine that has Python PyTorch
# (CUDA), a C++ compiler and make, but no Node.js and no network, into gpu-bundle/
# (git-ignored, at most 64 MiB: the device tool carries it with the working tree):
#   node.xz              this machine's node binary (its version matches the headers)
#   node-headers.tar.xz  include/node/*.h, common.gypi, config.gypi: node-gyp --nodedir for an N-API addon
#   node_modules.tar.xz  the npm packages (node-gyp, typescript, node-addon-api, runtime deps)
#                        without better-sqlite3's C sources (its built addon stays)
#   shared.tar.xz        ../shared/tokenizers/opt, for test/cuda.test.ts's finetune run
#   MANIFEST             versions and sizes
# node.xz is reused while the node version is unchanged (xz of ~100 MB takes minutes).
#   scripts/pack-gpu-bundle.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=gpu-bundle
mkdir -p "$out"
say() { echo "pack-gpu-bundle: $*" >&2; }

node_bin=$(readlink -f "$(command -v node)")
version=$(node -p process.version)
prefix=$(dirname "$(dirname "$node_bin")")
headers=""
for d in "$prefix/include/node" "$HOME/.cache/node-gyp/${version#v}/include/node" "/usr/include/node"; do
  if [ -f "$d/node_api.h" ] && [ -f "$d/common.gypi" ]; then headers=$d; break; fi
done
[ -n "$headers" ] || { say "no Node headers (include/node/node_api.h and common.gypi) beside $node_bin or in ~/.cache/node-gyp"; exit 1; }
grep -q "define NODE_MAJOR_VERSION ${version:1:2}" "$headers/node_version.h" ||
  { say "$headers/node_version.h is not node $version"; exit 1; }
[ -d node_modules/node-gyp ] && [ -d node_modules/typescript ] || { say "node_modules incomplete: run npm ci first"; exit 1; }

export XZ_OPT=${XZ_OPT:--6 -T0}
if [ ! -f "$out/node.xz" ] || [ "$(cat "$out/node.version" 2>/dev/null)" != "$version" ]; then
  say "compressing $node_bin ($version)"
  xz -c "$node_bin" > "$out/node.xz.tmp" && mv "$out/node.xz.tmp" "$out/node.xz"
  echo "$version" > "$out/node.version"
fi

staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT
mkdir -p "$staging/include/node"
cp "$headers"/*.h "$headers"/common.gypi "$headers"/config.gypi "$staging/include/node/"
tar -C "$staging" -cJf "$out/node-headers.tar.xz" include

say "packing node_modules"
tar --exclude=node_modules/better-sqlite3/deps --exclude=node_modules/better-sqlite3/src --exclude=node_modules/.cache \
  -cJf "$out/node_modules.tar.xz" node_modules

shared=${RANDMASK_SHARED_DIR:-../shared}
if [ -f "$shared/tokenizers/opt/vocab.json" ]; then
  tar -C "$shared" -cJf "$out/shared.tar.xz" tokenizers/opt
else
  say "no $shared/tokenizers/opt: the CUDA finetune test will be skipped there"
  rm -f "$out/shared.tar.xz"
fi

total=$(du -cb "$out"/*.xz | tail -1 | cut -f1)
{
  echo "packed $(date -u +%Y-%m-%dT%H:%MZ) from $(git rev-parse --short HEAD)"
  echo "node $version ($node_bin), headers from $headers"
  ls -l "$out"/*.xz | awk '{print $5, $NF}'
  echo "total $total bytes"
} > "$out/MANIFEST"
cat "$out/MANIFEST" >&2
if [ "$total" -gt $((64 * 1024 * 1024 - 2 * 1024 * 1024)) ]; then
  say "bundle is $total bytes: over the 62 MiB this leaves of the device tool's 64 MiB carry"; exit 1
fi
