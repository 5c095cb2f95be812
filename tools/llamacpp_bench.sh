#!/usr/bin/env bash
# Generation and prompt speed of quant4j against llama.cpp on the same GGUF files, and the ratio. The files are
# TinyLlama-1.1B-shaped random models that quant4j writes (byte-identical to llama-quantize's output for the same
# input; see tools/llamacpp_check.sh).
#
#   [REPS=3] [FILES="Q8_0 Q4_0 Q4_K_M"] [TG=32] [PP=64] tools/llamacpp_bench.sh /path/to/llama.cpp/build/bin WORKDIR [THREADS...]
#
# The two tools run interleaved, one run each in turn (llama.cpp, quant4j, llama.cpp, quant4j, ... REPS times per file
# and thread count), so that a change in the machine's load falls on both; each run is llama-bench -r 1 against
# quant4j bench -r 1 (which warms up once before timing). Printed per file × threads: every run's tg and pp figures,
# the medians, and the median of the per-pair ratios quant4j / llama.cpp. PP=0 skips prompt processing.
# WORKDIR keeps the model files between runs (about 7 GB with the F32 source).
set -eu
BIN=$1; WORK=$2; shift 2
THREADS=${*:-1 2}
REPS=${REPS:-3}; FILES=${FILES:-Q8_0 Q4_0 Q4_K_M}; TG=${TG:-32}; PP=${PP:-64}
HERE=$(cd "$(dirname "$0")/.." && pwd)
Q="$HERE/quant4j"
mkdir -p "$WORK"
for t in $FILES; do
  if [ ! -f "$WORK/tl-$t.gguf" ]; then
    [ -f "$WORK/tl-f32.gguf" ] || "$Q" random-init --config tinyllama-1.1b --type F32 -o "$WORK/tl-f32.gguf" >/dev/null
    "$Q" quantize "$WORK/tl-f32.gguf" "$WORK/tl-$t.gguf" --type "$t" >/dev/null
  fi
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR]=$1} END{ if (NR == 0) print "?"; else if (NR % 2) printf "%.2f", v[(NR+1)/2]; else printf "%.2f", (v[NR/2]+v[NR/2+1])/2 }'; }
echo "$REPS interleaved runs each (llama.cpp, quant4j, ...); load at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| file | threads | llama.cpp tg$TG (runs) | quant4j tg$TG (runs) | tg ratios | median tg ratio | llama.cpp pp$PP (median) | quant4j pp$PP (median) | median pp ratio |"
echo "|---|---:|---|---|---|---:|---:|---:|---:|"
for t in $FILES; do
  for th in $THREADS; do
    ltgs=""; qtgs=""; rtgs=""; lpps=""; qpps=""; rpps=""
    for rep in $(seq "$REPS"); do
      if [ "$PP" -gt 0 ]; then
        ll=$("$BIN/llama-bench" -m "$WORK/tl-$t.gguf" -p "$PP" -n "$TG" -t "$th" -r 1 -o csv 2>/dev/null | tail -n 2)
        lpp=$(echo "$ll" | awk -F, 'NR==1{print $(NF-1)}' | tr -d '"'); ltg=$(echo "$ll" | awk -F, 'NR==2{print $(NF-1)}' | tr -d '"')
      else
        ll=$("$BIN/llama-bench" -m "$WORK/tl-$t.gguf" -p 0 -n "$TG" -t "$th" -r 1 -o csv 2>/dev/null | tail -n 1)
        lpp=""; ltg=$(echo "$ll" | awk -F, '{print $(NF-1)}' | tr -d '"')
      fi
      qq=$("$Q" bench "$WORK/tl-$t.gguf" -p "$PP" -n "$TG" -t "$th" -r 1 2>/dev/null)
      qpp=$(echo "$qq" | awk -v k="pp$PP" '$1==k{print $3}'); qtg=$(echo "$qq" | awk -v k="tg$TG" '$1==k{print $3}')
      ltgs="$ltgs $(printf %.2f "$ltg")"; qtgs="$qtgs $qtg"
      rtgs="$rtgs $(awk -v a="$qtg" -v b="$ltg" 'BEGIN{ if (b > 0) printf "%.2f", a / b; else print "?" }')"
      if [ "$PP" -gt 0 ]; then
        lpps="$lpps $lpp"; qpps="$qpps $qpp"
        rpps="$rpps $(awk -v a="$qpp" -v b="$lpp" 'BEGIN{ if (b > 0) printf "%.3f", a / b; else print "?" }')"
      fi
    done
    printf "| %s | %s | %s | %s | %s | **%s** | %s | %s | %s |\n" "$t" "$th" "$(echo $ltgs | sed 's| | / |g')" "$(echo $qtgs | sed 's| | / |g')" \
      "$(echo $rtgs | sed 's| | / |g')" "$(echo "$rtgs" | median)" "$(echo "$lpps" | median)" "$(echo "$qpps" | median)" "$(echo "$rpps" | median)"
  done
done
