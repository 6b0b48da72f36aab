#!/usr/bin/env bash
# Rebuilds models/opt-mini (issue 11): the corpus from ../shared/data, pretraining
# with `randmask pretrain`, then scripts/ship-opt-mini.mjs (bf16 weights, model card,
# demo table). Resumable: after an interruption, run it again; pretraining continues
# from its last checkpoint. OPT_MINI_WORK sets the work folder (default runs/opt-mini).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${OPT_MINI_WORK:-runs/opt-mini}"
SHARED="${RANDMASK_SHARED:-../shared}"
CLI="node dist/src/cli/main.js"

if [ ! -f "$WORK/corpus/corpus-manifest.json" ]; then
  node scripts/build-corpus.mjs --data-root "$SHARED/data" --out "$WORK/corpus" --tokenize --cache-dir "$WORK/tokens"
fi
if [ -f "$WORK/model/checkpoint/state.json" ]; then
  $CLI pretrain --resume "$WORK/model"
else
  C="$WORK/corpus"
  $CLI pretrain --config scripts/opt-mini-config.json --tokenizer "$SHARED/tokenizers/opt" \
    --data "$C/tinyshakespeare.jsonl,$C/gutenberg.jsonl,$C/reviews.jsonl,$C/wiki.jsonl,$C/sst2-train.jsonl:4,$C/superglue-train.jsonl:2,$C/multirc-train-unlabeled.jsonl:2" \
    --cache-dir "$WORK/tokens" --out "$WORK/model" --block-size 256 --batch-size 16 --grad-accum 2 --lr 1e-3 --min-lr 1e-4 \
    --dtype bf16 --max-tokens 10649600 --eval-every 200 --holdout-tokens 16384 --checkpoint-minutes 10 --seed 0
fi
node scripts/ship-opt-mini.mjs --run "$WORK/model" --out models/opt-mini --run-demo --acceptance
