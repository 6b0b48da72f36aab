#!/usr/bin/env bash
# The GPU check (issue 14), one script for a machine with Python PyTorch 2.x + CUDA,
# a C++ compiler and make, but no Node.js and no network. It brings Node from
# gpu-bundle/ (scripts/pack-gpu-bundle.sh, run beforehand where Node is), then:
#   1. unpacks node, Node's headers, node_modules and the OPT tokenizer
#   2. builds the addon with node-gyp against that Python's PyTorch (scripts/find-libtorch.mjs
#      with PYTHON=python3: the same choice scripts/setup.sh makes), then the TypeScript
#   3. runs test/cuda.test.ts on $DEVICE (every op against the CPU, the sparse-delta kernel's
#      forward/backward/double backward, one training step of every method, KV generation)
#   4. runs bench/gpu.ts (OPT-1.3b shapes, batch 8 × 128, bf16: Random Masking 1e-3…1e-5 and
#      LoRA against Hugging Face PEFT's LoRA) in the time that is left
# and writes $OUT/gpu-results.md (a dated section for bench/RESULTS.md) beside the logs.
# Every stage has a deadline so the whole run stays within $BUDGET_S (default 480 s).
# With the device tool:  run(command="bash scripts/gpu-check.sh", carry=["gpu-bundle"], timeout_s=600)
# Dry run on a CPU machine (this script's plumbing, not CUDA):
#   DEVICE=cpu BUILD=skip BENCH_ARGS="--hidden 128 --layers 2 --batch 2 --seq 16 --steps 2 --warmup 1" OUT=/tmp/o bash scripts/gpu-check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
BUDGET_S=${BUDGET_S:-480}
DEVICE=${DEVICE:-cuda}
BUILD=${BUILD:-full}   # full | skip (use the build/ already there); JOBS: compile jobs (default nproc)
# PYTHON: the PyTorch to build against (default python3); PEER_PYTHON: the HF peer's (default python3)
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu-check.log") 2>&1
left() { local l=$((BUDGET_S - ($(date +%s) - t0))); echo $(( l > 1 ? l : 1 )); }
say() { echo "gpu-check [$(($(date +%s) - t0)) s]: $*"; }
die() { say "FAILED: $*"; { echo "### GPU check ($(date -u '+%Y-%m-%d %H:%M') UTC): failed"; echo; echo "$*"; echo; echo "See gpu-check.log."; } > "$OUT/gpu-results.md"; exit 1; }

bundle=$PWD/gpu-bundle
work=${TMPDIR:-/tmp}/randmask-gpu-check
mkdir -p "$work/bin"

# ------------------------------------------------------------ 1. unpack (python3: xz may be absent)
if ! command -v node >/dev/null || [ "${USE_BUNDLED_NODE:-1}" = 1 ]; then
  [ -f "$bundle/node.xz" ] || die "gpu-bundle/node.xz missing: run scripts/pack-gpu-bundle.sh and carry gpu-bundle"
  python3 - "$bundle" "$work" "$PWD" <<'EOF' || die "unpacking gpu-bundle failed"
import lzma, os, shutil, sys, tarfile
bundle, work, repo = sys.argv[1:]
with lzma.open(os.path.join(bundle, "node.xz")) as src, open(os.path.join(work, "bin", "node"), "wb") as dst:
    shutil.copyfileobj(src, dst)
os.chmod(os.path.join(work, "bin", "node"), 0o755)
with tarfile.open(os.path.join(bundle, "node-headers.tar.xz")) as t: t.extractall(work)
if not os.path.isdir(os.path.join(repo, "node_modules", "node-gyp")):
    with tarfile.open(os.path.join(bundle, "node_modules.tar.xz")) as t: t.extractall(repo)
if os.path.exists(os.path.join(bundle, "shared.tar.xz")):
    with tarfile.open(os.path.join(bundle, "shared.tar.xz")) as t: t.extractall(os.path.join(work, "shared"))
EOF
  export PATH="$work/bin:$PATH"
fi
[ -d "$work/shared" ] && export RANDMASK_SHARED_DIR="$work/shared"
say "node $(node --version) at $(command -v node); $("${PYTHON:-python3}" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' 2>&1 | tail -1)"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

# ------------------------------------------------------------ 2. build
if [ "$BUILD" = full ]; then
  export PYTHON=${PYTHON:-$(command -v python3)}
  for tool in make g++; do command -v $tool >/dev/null || die "$tool not found (node-gyp needs make and a C++ compiler)"; done
  say "libtorch: $(node scripts/find-libtorch.mjs describe)"
  gyp() { timeout "$(left)" node node_modules/node-gyp/bin/node-gyp.js "$@" --nodedir="$work"; }
  gyp configure >"$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; die "node-gyp configure failed"; }
  say "building the addon (-j ${JOBS:-$(nproc)})"
  gyp build -j "${JOBS:-$(nproc)}" >>"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; die "node-gyp build failed"; }
fi
[ -f build/Release/randmask_native.node ] || die "build/Release/randmask_native.node missing (BUILD=$BUILD)"
timeout "$(left)" node node_modules/typescript/bin/tsc -p . || die "tsc failed"
node -e 'import("./dist/src/engine/index.js").then((e) => console.log("addon:", JSON.stringify(e.buildInfo())))'
if [ "$DEVICE" != cpu ]; then
  node -e 'import("./dist/src/engine/index.js").then((e) => process.exit(e.buildInfo().cudaAvailable ? 0 : 1))' ||
    die "the addon sees no CUDA (libtorch without CUDA, or no driver): see the addon line above"
fi
say "built; $(left) s left"

# ------------------------------------------------------------ 3. the CUDA tests
tests_s=$(( $(left) * 2 / 5 ))
say "test/cuda.test.ts on $DEVICE (at most $tests_s s)"
RANDMASK_TEST_DEVICE=$DEVICE timeout "$tests_s" node --test --test-reporter=tap dist/test/cuda.test.js > "$OUT/cuda-tests.tap" 2>&1
tests_rc=$?
summary=$(grep -E '^# (tests|pass|fail|skipped|duration_ms)' "$OUT/cuda-tests.tap" | sed 's/^# //' | tr '\n' ' ')
failed=$(grep -E '^not ok' "$OUT/cuda-tests.tap" | sed 's/^not ok [0-9]* - //')
[ $tests_rc = 124 ] && summary="$summary(stopped after $tests_s s)"
say "tests: rc $tests_rc, $summary"
[ -n "$failed" ] && echo "$failed"

# ------------------------------------------------------------ 4. the benchmark
bench_s=$(( $(left) - 15 ))
say "bench/gpu.ts (budget $bench_s s)"
# shellcheck disable=SC2086
timeout "$(( bench_s + 10 ))" node dist/bench/gpu.js --device "$DEVICE" --budget-s "$bench_s" --python "${PEER_PYTHON:-python3}" ${BENCH_ARGS:-} \
  --out "$OUT/bench.md" || say "bench exited with $?"

# ------------------------------------------------------------ the section for bench/RESULTS.md
{
  echo "## GPU ($(date -u '+%Y-%m-%d %H:%M') UTC, scripts/gpu-check.sh)"
  echo
  echo "$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "device $DEVICE (no nvidia-smi)"); node $(node --version); $("${PYTHON:-python3}" -c 'import torch; print("PyTorch", torch.__version__, "CUDA", torch.version.cuda)' 2>/dev/null)."
  echo
  echo "**CUDA tests** (test/cuda.test.ts, RANDMASK_TEST_DEVICE=$DEVICE): $summary(exit $tests_rc)."
  if [ -n "$failed" ]; then echo; echo "Failed:"; echo "$failed" | sed 's/^/- /'; fi
  echo
  if [ -f "$OUT/bench.md" ]; then cat "$OUT/bench.md"; else echo "Benchmark: no result (see gpu-check.log)."; fi
  echo
  echo "Whole check: $(($(date +%s) - t0)) s."
} > "$OUT/gpu-results.md"
say "wrote $OUT/gpu-results.md"
cat "$OUT/gpu-results.md"
