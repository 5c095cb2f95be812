#!/usr/bin/env bash
# Text sampled from a teacher model (LLM-QAT's data-free recipe): N stories of 256 tokens at temperature 1.
# Usage: scripts/teacher-text.sh MODEL N OUT.txt
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
model="$1" n="$2" out="$3"
: > "$out"
for i in $(seq 1 "$n"); do
  "$here/quant4j" generate "$model" -p "Once upon a time" --temp 1 --top-k 0 --top-p 1 --min-p 0 -n 256 --seed "$i" --no-stats 2>/dev/null >> "$out"
  echo >> "$out"
done
