#!/usr/bin/env bash
# End-to-end quantization time and peak memory for a calibrated method on a Hugging Face safetensors checkpoint
# (weights mmapped), e.g. the TinyLlama-shaped random model of docs/MEMORY.md:
#   ./quant4j random-init --config tinyllama-1.1b -o /tmp/tl --type F16
#   tools/quantize_bench.sh /tmp/tl gptq --bits 4 --group-size 32 --samples 32 --seq-len 512
#   tools/quantize_bench.sh /tmp/tl awq  --bits 4 --group-size 128 --samples 32 --seq-len 512   # once --method awq exists
# Heap limit: QUANT4J_JAVA_OPTS (default -Xmx2g). Prints wall and CPU seconds per million quantized (block linear)
# parameters and the peak resident set from /usr/bin/time -v.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
model=$1 method=$2; shift 2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export QUANT4J_JAVA_OPTS=${QUANT4J_JAVA_OPTS:--Xmx2g}
uptime
/usr/bin/time -v -o "$out/time.txt" "$here/quant4j" quantize "$model" "$out/q" --method "$method" --no-progress "$@"
uptime
params=$(/usr/bin/python3 - "$model/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
d, f, L = c['hidden_size'], c['intermediate_size'], c['num_hidden_layers']
kv = d // c['num_attention_heads'] * c.get('num_key_value_heads', c['num_attention_heads'])
print(L * (2 * d * d + 2 * d * kv + 3 * d * f))
PY
)
awk -v p="$params" -F': ' '
  /Elapsed \(wall clock\)/ { n = split($2, t, ":"); wall = (n == 3 ? t[1] * 3600 + t[2] * 60 + t[3] : t[1] * 60 + t[2]) }
  /User time/ { cpu += $2 } /System time/ { cpu += $2 }
  /Maximum resident set size/ { rss = $2 }
  END { printf "quantized parameters %.1f M: wall %.1f s (%.3f s per M), CPU %.1f s (%.3f s per M), peak RSS %.2f GB\n",
        p / 1e6, wall, wall / (p / 1e6), cpu, cpu / (p / 1e6), rss / 1048576 }' "$out/time.txt"
