#!/usr/bin/env bash
# The QAT and BitNet tables of issue 7: stories260K fine-tuned on data/text/tinystories_sample.txt (1,879 tokens),
# scored on the held-out data/text/tinystories_valid_excerpt.txt with `quant4j eval` (llama-perplexity's protocol,
# ctx 128). Every QAT / BitNet model is exported through the normal quantize path and evaluated by the runtime.
# Usage: scripts/train-experiments.sh [OUTDIR]   (about 25 minutes on 2 cores)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
out="${1:-out/train-exp}"
mkdir -p "$out"
q4j=./quant4j
base=models/stories260K/stories260K.bin
train=data/text/tinystories_sample.txt
val=data/text/tinystories_valid_excerpt.txt
results="$out/results.tsv"
: > "$results"

ppl() { $q4j eval "$1" --no-progress 2>/dev/null | awk '/^perplexity/ {print $2" ± "$4}'; }
mib() { du -sb "$1" --exclude='*.json' | awk '{printf "%.3f", $1/1048576}'; }
row() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" | tee -a "$results"; }

row "F32 stories260K (original)" "32" "$(mib $base)" "$(ppl $base)"

# ---- QAT against RTN at the same scheme ----------------------------------------------------------------------
for spec in "w2g32asym 2 --asymmetric" "w3g32asym 3 --asymmetric" "w2g32 2 --symmetric" "w3g32 3 --symmetric"; do
  set -- $spec
  name=$1 bits=$2 symflag=$3
  $q4j quantize $base "$out/rtn-$name" --bits $bits --granularity group --group-size 32 $symflag >/dev/null 2>&1
  row "RTN $name" "$bits" "$(mib "$out/rtn-$name")" "$(ppl "$out/rtn-$name")"
  common=(--init $base --data $train --val $val --batch 8 --seq 64 --warmup 10 --eval-every 50 --qat $name)
  $q4j train "${common[@]}" --steps 200 --lr 1e-3 --export-quantized "$out/qat-$name-q" -o "$out/qat-$name.gguf" > "$out/qat-$name.log" 2>&1
  row "QAT $name (cross-entropy, 200 steps)" "$bits" "$(mib "$out/qat-$name-q")" "$(ppl "$out/qat-$name-q")"
  $q4j train "${common[@]}" --steps 200 --lr 1e-3 --distill --export-quantized "$out/qatkd-$name-q" -o "$out/qatkd-$name.gguf" > "$out/qatkd-$name.log" 2>&1
  row "QAT $name (distilled from F32, 200 steps)" "$bits" "$(mib "$out/qatkd-$name-q")" "$(ppl "$out/qatkd-$name-q")"
done

# ---- BitNet ------------------------------------------------------------------------------------------------------
for kind in bitnet1.58 bitnet1; do
  $q4j train --init $base --data $train --steps 0 --qat $kind --export-quantized "$out/ptq-$kind-q" -o "$out/ptq-$kind.gguf" > "$out/ptq-$kind.log" 2>&1
  row "post-training $kind (no training), A8" "-" "-" "$(ppl "$out/ptq-$kind-q")"
  $q4j train --init $base --data $train --val $val --batch 8 --seq 64 --warmup 20 --eval-every 100 --qat $kind --steps 300 --lr 2e-3 --distill \
      --export-quantized "$out/qatkd-$kind-q" -o "$out/qatkd-$kind.gguf" > "$out/qatkd-$kind.log" 2>&1
  row "QAT $kind from stories260K (distilled, 300 steps), A8" "-" "-" "$(ppl "$out/qatkd-$kind-q")"
done
scratch=(--config stories260k --tokenizer models/stories260K/tok512.bin --teacher $base --data $train --val $val --batch 8 --seq 64 --warmup 30 --eval-every 100 --steps 600 --lr 3e-3)
$q4j train "${scratch[@]}" -o "$out/scratch-fp.gguf" > "$out/scratch-fp.log" 2>&1
row "from scratch, F32 (distilled, 600 steps)" "32" "$(mib "$out/scratch-fp.gguf")" "$(ppl "$out/scratch-fp.gguf")"
$q4j train "${scratch[@]}" --qat bitnet1.58 --export-quantized "$out/scratch-b158-q" -o "$out/scratch-b158.gguf" > "$out/scratch-b158.log" 2>&1
row "from scratch, BitNet b1.58 A8 (distilled, 600 steps)" "-" "-" "$(ppl "$out/scratch-b158-q")"

# ---- from scratch on text sampled from stories260K (LLM-QAT's data-free recipe: 80 stories, ~21K tokens) -----------
test -s "$out/teacher-80.txt" || scripts/teacher-text.sh $base 80 "$out/teacher-80.txt"
scratch2=(--config stories260k --tokenizer models/stories260K/tok512.bin --teacher $base --data "$out/teacher-80.txt" --val $val --batch 8 --seq 64 --warmup 30 --eval-every 100 --steps 600 --lr 3e-3)
$q4j train "${scratch2[@]}" -o "$out/scratch2-fp.gguf" > "$out/scratch2-fp.log" 2>&1
row "from scratch on teacher text, F32 (distilled, 600 steps)" "32" "$(mib "$out/scratch2-fp.gguf")" "$(ppl "$out/scratch2-fp.gguf")"
$q4j train "${scratch2[@]}" --qat bitnet1.58 --export-quantized "$out/scratch2-b158-q" -o "$out/scratch2-b158.gguf" > "$out/scratch2-b158.log" 2>&1
row "from scratch on teacher text, BitNet b1.58 A8 (distilled, 600 steps)" "-" "-" "$(ppl "$out/scratch2-b158-q")"
echo "results in $results"
