#!/usr/bin/env bash
# Generation and prompt speed of quant4j against llama.cpp on the same GGUF files, one tool after the other, and the
# ratio. The files are TinyLlama-1.1B-shaped random models that quant4j writes (byte-identical to llama-quantize's
# output for the same input; see tools/llamacpp_check.sh).
#
#   tools/llamacpp_bench.sh /path/to/llama.cpp/build/bin WORKDIR [THREADS...]
#
# WORKDIR keeps the model files between runs (about 7 GB with the F32 source).
set -eu
BIN=$1; WORK=$2; shift 2
THREADS=${*:-1 2}
HERE=$(cd "$(dirname "$0")/.." && pwd)
Q="$HERE/quant4j"
mkdir -p "$WORK"
[ -f "$WORK/tl-f32.gguf" ] || "$Q" random-init --config tinyllama-1.1b --type F32 -o "$WORK/tl-f32.gguf" >/dev/null
for t in Q8_0 Q4_0 Q4_K_M; do
  [ -f "$WORK/tl-$t.gguf" ] || "$Q" quantize "$WORK/tl-f32.gguf" "$WORK/tl-$t.gguf" --type "$t" >/dev/null
done
echo "| file | threads | llama.cpp pp64 | quant4j pp64 | llama.cpp tg32 | quant4j tg32 | quant4j / llama.cpp (tg) |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for t in Q8_0 Q4_0 Q4_K_M; do
  for th in $THREADS; do
    ll=$("$BIN/llama-bench" -m "$WORK/tl-$t.gguf" -p 64 -n 32 -t "$th" -r 3 -o csv 2>/dev/null | tail -n 2)
    lpp=$(echo "$ll" | awk -F, 'NR==1{print $(NF-1)}' | tr -d '"'); ltg=$(echo "$ll" | awk -F, 'NR==2{print $(NF-1)}' | tr -d '"')
    qq=$("$Q" bench "$WORK/tl-$t.gguf" -p 64 -n 32 -t "$th" -r 3 2>/dev/null)
    qpp=$(echo "$qq" | awk '$1=="pp64"{print $3}'); qtg=$(echo "$qq" | awk '$1=="tg32"{print $3}')
    ratio=$(awk -v a="$qtg" -v b="$ltg" 'BEGIN{ if (b > 0) printf "%.2f", a / b; else print "?" }')
    printf "| %s | %s | %.2f | %s | %.2f | %s | %s |\n" "$t" "$th" "$lpp" "$qpp" "$ltg" "$qtg" "$ratio"
  done
done
