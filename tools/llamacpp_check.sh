#!/usr/bin/env bash
# Checks quant4j's GGUF quantization against llama.cpp's llama-quantize, type by type, with and without an
# importance matrix, and that llama.cpp loads and evaluates quant4j's files.
#
#   tools/llamacpp_check.sh LLAMA_CPP_DIR MODEL.gguf TEXT [TYPES...]
#
# LLAMA_CPP_DIR is a llama.cpp checkout built with `cmake -B build && cmake --build build --target llama-quantize
# llama-perplexity`; its gguf-py is used to compare the files (tools/gguf_compare.py). The importance matrix is made
# by quant4j (`quant4j imatrix`) and given to both tools.
set -u
LLAMA=${1:?llama.cpp dir}; MODEL=${2:?model.gguf}; TEXT=${3:?calibration text}; shift 3
TYPES=${*:-Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q2_K_S Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K IQ4_NL IQ4_XS TQ1_0 TQ2_0 F16 BF16}
HERE=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(mktemp -d)
export PYTHONPATH="$LLAMA/gguf-py"
"$HERE/quant4j" imatrix "$MODEL" -f "$TEXT" -o "$OUT/imatrix.gguf" --ctx 128 --chunks 20 --no-progress >/dev/null 2>&1 || { echo "imatrix failed"; exit 1; }
pass=0; fail=0
for t in $TYPES; do
  for im in none imatrix; do
    args=(); [ "$im" = imatrix ] && args=(--imatrix "$OUT/imatrix.gguf")
    [ "$t" = Q2_K_S ] && [ "$im" = none ] && continue   # needs an importance matrix in both tools
    "$HERE/quant4j" quantize "$MODEL" "$OUT/q.gguf" --type "$t" "${args[@]}" >/dev/null 2>"$OUT/q.err" || { echo "$t $im: quant4j failed: $(tail -1 "$OUT/q.err")"; fail=$((fail+1)); continue; }
    "$LLAMA/build/bin/llama-quantize" "${args[@]}" "$MODEL" "$OUT/l.gguf" "$t" 1 >"$OUT/l.log" 2>&1 || { echo "$t $im: llama-quantize failed: $(tail -1 "$OUT/l.log")"; fail=$((fail+1)); continue; }
    if python3 "$HERE/tools/gguf_compare.py" "$OUT/q.gguf" "$OUT/l.gguf" >"$OUT/cmp.txt" 2>&1; then
      echo "$t $im: identical ($(grep identical "$OUT/cmp.txt"))"; pass=$((pass+1))
    else
      echo "$t $im: DIFFERENT"; head -5 "$OUT/cmp.txt"; fail=$((fail+1))
    fi
  done
done
echo "identical: $pass, different or failed: $fail"
rm -rf "$OUT"
