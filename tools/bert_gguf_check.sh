#!/usr/bin/env bash
# Checks that llama.cpp runs quant4j's GGUF bert exports and agrees with quant4j's own forward pass: for each GGUF
# file, llama.cpp's tokens and pooled embedding of every line of TEXT (through tools/llama_embed.c, a small libllama
# client) against `quant4j embed FILE --json` on the same file; prints the token agreement and the mean / min cosine.
#
#   tools/bert_gguf_check.sh LLAMA_CPP_DIR TEXT FILE.gguf...
#
# LLAMA_CPP_DIR is a llama.cpp checkout with libllama built (build/bin/libllama.so). Make the files with e.g.
#   ./quant4j convert model.onnx out/minilm-f32.gguf ;  ./quant4j quantize model.onnx out/minilm-q8.gguf --bits 8 --granularity group --group-size 32
set -u
LLAMA=${1:?llama.cpp dir}; TEXT=${2:?text, one sentence a line}; shift 2
HERE=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(mktemp -d)
gcc -O1 -o "$OUT/llama_embed" "$HERE/tools/llama_embed.c" -I"$LLAMA/include" -I"$LLAMA/ggml/include" \
    -L"$LLAMA/build/bin" -lllama -lm -Wl,-rpath,"$LLAMA/build/bin" || { echo "cannot build tools/llama_embed.c"; exit 1; }
for f in "$@"; do
  "$OUT/llama_embed" "$f" < "$TEXT" > "$OUT/llama.jsonl" 2> "$OUT/llama.err" || { echo "$f: llama.cpp failed: $(tail -3 "$OUT/llama.err")"; continue; }
  "$HERE/quant4j" embed "$f" -f "$TEXT" --json > "$OUT/q4j.json" 2> "$OUT/q4j.err" || { echo "$f: quant4j failed: $(tail -3 "$OUT/q4j.err")"; continue; }
  python3 - "$OUT/llama.jsonl" "$OUT/q4j.json" "$f" <<'PY'
import json, math, sys
llama = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
q4j = json.load(open(sys.argv[2]))
assert len(llama) == len(q4j), (len(llama), len(q4j))
same_tokens, cos = 0, []
for a, b in zip(llama, q4j):
    same_tokens += a["tokens"] == b["tokens"]
    x, y = a["embedding"], b["embedding"]
    dot = sum(p * q for p, q in zip(x, y)); nx = math.sqrt(sum(p * p for p in x)); ny = math.sqrt(sum(q * q for q in y))
    cos.append(dot / (nx * ny))
print(f"{sys.argv[3]}: {len(cos)} sentences, same tokens {same_tokens}/{len(cos)}, cosine llama.cpp vs quant4j mean {sum(cos)/len(cos):.6f} min {min(cos):.6f}")
PY
done
rm -rf "$OUT"
