#!/usr/bin/env bash
# GPTQ per-layer time, quant4j against IST-DASLab's reference (tools/gptq_reference.py, Debian's python3-torch with
# OpenBLAS) on the same weights and Hessian, the same number of threads. Usage:
#   [REPEAT=3] [KEEP_DIR=dir] tools/gptq_bench.sh [ROWS COLS [THREADS [HESSIAN_SAMPLES [SEQ_LEN]]]]
# defaults: 5632 2048 (TinyLlama's gate/up; its down is 2048 5632), 2 threads, Hessian over 4 samples of 2048 tokens.
# Prints both timings and the ratio reference / quant4j. Measure on an idle machine (the script prints uptime).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rows=${1:-5632} cols=${2:-2048} threads=${3:-2} hs=${4:-4} len=${5:-2048} repeat=${REPEAT:-3}
if [ -n "${KEEP_DIR:-}" ]; then        # KEEP_DIR=path keeps W.f32 / H.f32 there (for quant4j bench --gptq path)
  dir=$KEEP_DIR; mkdir -p "$dir"
else
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
fi
uptime
ref=$(OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads /usr/bin/python3 "$here/tools/gptq_reference.py" time \
      --rows "$rows" --cols "$cols" --groupsize 128 --repeat "$repeat" --hessian-samples "$hs" --hessian-seq-len "$len" --save "$dir")
echo "$ref"
ours=$("$here/quant4j" bench --gptq "$dir" --gptq-options 4,asym,128 --hessian "${hs}x${len}" -t "$threads" -r "$repeat")
echo "$ours"
uptime
r_layer=$(sed -n 's/^reference fasterquant.*: \([0-9.]*\) s.*/\1/p' <<<"$ref")
q_layer=$(sed -n 's/^quant4j GPTQ.*: \([0-9.]*\) s (best.*/\1/p' <<<"$ours")
r_cpu=$(sed -n 's/^reference fasterquant.*, cpu \([0-9.]*\) s$/\1/p' <<<"$ref")
q_cpu=$(sed -n 's/^quant4j GPTQ.*, cpu \([0-9.]*\) s (prepare.*/\1/p' <<<"$ours")
r_h=$(sed -n 's/^reference add_batch.*: \([0-9.]*\) s$/\1/p' <<<"$ref")
q_h=$(sed -n 's/^quant4j Hessian.*: \([0-9.]*\) s (.*/\1/p' <<<"$ours")
awk -v a="$r_layer" -v b="$q_layer" 'BEGIN { printf "layer (prepare + Algorithm 1): reference %.3f s, quant4j %.3f s: quant4j %.2fx faster\n", a, b, a / b }'
if [ -n "$r_cpu" ] && [ -n "$q_cpu" ]; then
  awk -v a="$r_cpu" -v b="$q_cpu" 'BEGIN { printf "layer by process CPU time: reference %.3f s, quant4j %.3f s: quant4j %.2fx less\n", a, b, a / b }'
fi
if [ -n "$r_h" ] && [ -n "$q_h" ]; then
  awk -v a="$r_h" -v b="$q_h" 'BEGIN { printf "Hessian accumulation: reference %.3f s, quant4j %.3f s: quant4j %.2fx faster\n", a, b, a / b }'
fi
