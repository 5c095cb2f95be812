#!/usr/bin/env bash
# Perplexity, KL-divergence against the F32 model, top-1 agreement and bits per weight of every llama.cpp file type,
# with and without an importance matrix, as a Markdown table.
#
#   tools/gguf_table.sh MODEL.gguf EVAL_TEXT CALIBRATION_TEXT CTX CHUNKS [TYPES...]
#
# The importance matrix is collected on CALIBRATION_TEXT (never the evaluation text) with `quant4j imatrix`.
set -eu
MODEL=$1; TEXT=$2; CALIB=$3; CTX=$4; CHUNKS=$5; shift 5
TYPES=${*:-Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_0 Q4_1 Q4_K_S Q4_K_M IQ4_NL IQ4_XS Q5_0 Q5_1 Q5_K_S Q5_K_M Q6_K Q8_0 TQ2_0 TQ1_0}
HERE=$(cd "$(dirname "$0")/.." && pwd)
Q="$HERE/quant4j"
OUT=$(mktemp -d)
"$Q" imatrix "$MODEL" -f "$CALIB" -o "$OUT/imatrix.gguf" --ctx "$CTX" --chunks 100 --no-progress >/dev/null
"$Q" eval "$MODEL" -f "$TEXT" --ctx "$CTX" --chunks "$CHUNKS" --save-logits "$OUT/base.kld" --json --no-progress > "$OUT/base.json"
python3 - "$OUT/base.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))["perplexity"]
print("| file type | imatrix | bits/weight (all tensors) | size (MiB) | perplexity | KL vs F32 | same top-1 |")
print("|---|---|---:|---:|---:|---:|---:|")
print(f"| F32 | | 32.00 | | {p['ppl']:.4f} ± {p['pplError']:.4f} | 0 | 100 % |")
PY
for t in $TYPES; do
  for im in no yes; do
    args=(); [ $im = yes ] && args=(--imatrix "$OUT/imatrix.gguf")
    [ "$t" = Q2_K_S ] && [ $im = no ] && continue
    "$Q" quantize "$MODEL" "$OUT/q.gguf" --type "$t" "${args[@]}" > /dev/null 2>&1 || { echo "| $t | $im | quantize failed | | | | |"; continue; }
    "$Q" eval "$OUT/q.gguf" --kl-base "$OUT/base.kld" --json --no-progress > "$OUT/q.json"
    python3 - "$OUT/q.json" "$OUT/q.gguf" "$MODEL" "$t" "$im" <<'PY'
import json, os, sys
sys.path.insert(0, os.environ.get("GGUF_PY", ""))
k = json.load(open(sys.argv[1]))["kl"]
try:
    from gguf import GGUFReader
    r = GGUFReader(sys.argv[2])
    nbytes = sum(int(t.n_bytes) for t in r.tensors); nparams = sum(int(t.n_elements) for t in r.tensors)
    bpw = f"{8 * nbytes / nparams:.2f}"; mib = f"{nbytes / 1048576:.3f}"
except ImportError:
    bpw = mib = "?"
print(f"| {sys.argv[4]} | {sys.argv[5]} | {bpw} | {mib} | {k['ppl']:.4f} ± {k['pplError']:.4f} | {k['klMean']:.6f} | {100 * k['sameTop']:.2f} % |")
PY
  done
done
rm -rf "$OUT"
