#!/usr/bin/env bash
# The QLoRA table of docs/TRAINING.md: stories260K, its linear weights quantized to 4 bits (RTN W4 g32 symmetric,
# frozen), rank-8 adapters on q/k/v/o/gate/up/down trained on in-domain text, scored with `quant4j eval` on the held-out
# data/text/tinystories_valid_excerpt.txt (121 chunks of 128). Usage: scripts/qlora-experiments.sh [OUTDIR]
# (about 15 minutes on 2 shared cores; 30 under heavy load)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
out="${1:-out/qlora}"
mkdir -p "$out"
q4j=./quant4j
fp=models/stories260K/stories260K.bin
val=data/text/tinystories_valid_excerpt.txt
results="$out/results.tsv"
: > "$results"
ppl() { $q4j eval "$@" --no-progress 2>/dev/null | awk '/^perplexity/ {print $2" ± "$4}'; }
row() { printf '%s\t%s\n' "$1" "$2" | tee -a "$results"; }
common=(--qlora --init $fp --base-type w4g32 --rank 8 --alpha 16 --val $val --batch 8 --seq 64 --warmup 10 --eval-every 50 --steps 200 --lr 1e-3)

row "F32 stories260K" "$(ppl $fp)"
# 1. cross-entropy on the 1,879-token sample: memorises it (validation perplexity rises)
$q4j train "${common[@]}" --data data/text/tinystories_sample.txt --save-base "$out/base-w4g32" -o "$out/adapter-ce" > "$out/ce.log" 2>&1
row "RTN W4 g32 base (frozen)" "$(ppl "$out/base-w4g32")"
row "W4 base + adapter, cross-entropy on the 1,879-token sample" "$(ppl "$out/base-w4g32" --lora "$out/adapter-ce")"
# 2. the same text, against the F32 model's next-token distributions (--distill)
$q4j train "${common[@]}" --data data/text/tinystories_sample.txt --distill -o "$out/adapter-kd" > "$out/kd.log" 2>&1
row "W4 base + adapter, distilled from F32 on the 1,879-token sample" "$(ppl "$out/base-w4g32" --lora "$out/adapter-kd")"
echo "results in $results"
