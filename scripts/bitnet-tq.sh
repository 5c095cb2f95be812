#!/usr/bin/env bash
# BitNet b1.58 packed as ggml ternary types (issue 7, item 4): train a small b1.58 model whose rows divide into
# 256-blocks (dim 256, ffn 768; stories260K's dims of 64 and 172 do not), pack it with `quantize --type TQ2_0 / TQ1_0`,
# and score the same held-out text with quant4j's eval and llama.cpp's llama-perplexity (ctx 128, 121 chunks).
# Usage: scripts/bitnet-tq.sh LLAMA_CPP_BIN_DIR [OUTDIR]     (about 40 minutes on 2 busy cores; training is most of it)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
bin="${1:?usage: scripts/bitnet-tq.sh LLAMA_CPP_BIN_DIR [OUTDIR]}"
out="${2:-out/bitnet-tq}"
mkdir -p "$out"
q4j=./quant4j
base=models/stories260K/stories260K.bin
val=data/text/tinystories_valid_excerpt.txt
cat > "$out/bitnet256.json" <<'JSON'
{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 256, "intermediate_size": 768,
 "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4, "vocab_size": 512,
 "max_position_embeddings": 128, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": true}
JSON
# training text: 40 stories sampled from stories260K (LLM-QAT's data-free recipe, as scripts/teacher-text.sh)
test -s "$out/teacher-40.txt" || scripts/teacher-text.sh $base 40 "$out/teacher-40.txt"
test -s "$out/b158.gguf" || $q4j train --config "$out/bitnet256.json" --tokenizer models/stories260K/tok512.bin --teacher $base \
    --data "$out/teacher-40.txt" --val $val --batch 8 --seq 64 --warmup 30 --eval-every 100 --steps 500 --lr 3e-3 \
    --qat bitnet1.58 --export-quantized "$out/b158-w8a8" -o "$out/b158.gguf" > "$out/train.log" 2>&1
for t in TQ2_0 TQ1_0; do
  $q4j quantize "$out/b158.gguf" "$out/b158-$t.gguf" --type $t --bitnet --output-tensor-type F32
done
ppl() { $q4j eval "$1" -f $val --ctx 128 --no-progress 2>/dev/null | awk '/^perplexity/ {print $2" ± "$4}'; }
lppl() { "$bin/llama-perplexity" -m "$1" -f $val -c 128 -b 128 -t 1 2>&1 | awk '/Final estimate/ {print $7" ± "$9}'; }
echo "W1.58A8 per-token (the trained forward; --export-quantized, W8A8 kernel)   quant4j: $(ppl "$out/b158-w8a8")"
for t in TQ2_0 TQ1_0; do
  echo "$t ($(du -b "$out/b158-$t.gguf" | cut -f1) bytes)   quant4j: $(ppl "$out/b158-$t.gguf")   llama.cpp: $(lppl "$out/b158-$t.gguf")"
done
