#!/bin/bash
# Fresh data on the built-in KG (seeds 0-2, closed and open) and the hobby KG, each audited with
# --strict against its training files; prints the exit code of each audit. Usage: scripts/audit_fresh_data.sh [OUT]
K=${KGREASON:-kgreason}
HERE=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-/tmp/kgreason-audit}; mkdir -p "$OUT"; cd "$OUT"
for s in 0 1 2; do
  $K kg build --seed $s --out kg$s.json > /dev/null
  for m in closed open; do
    $K tasks generate --kg kg$s.json --out d$s$m --seed $s --mode $m > d$s$m.gen.log 2>&1
    $K tasks audit d$s$m/eval.jsonl --kg kg$s.json --against d$s$m/train_easy.jsonl d$s$m/train_hard.jsonl d$s$m/facts.jsonl --strict --json > d$s$m.audit.json; echo "seed $s $m strict_rc=$?"
  done
done
$K kg import "$HERE/tests/data/hobby_kg.json" --out hobby.json > /dev/null 2>&1
for m in closed open; do
  $K tasks generate --kg hobby.json --out h$m --seed 0 --mode $m > h$m.gen.log 2>&1
  $K tasks audit h$m/eval.jsonl --kg hobby.json --against h$m/train_easy.jsonl h$m/train_hard.jsonl h$m/facts.jsonl --strict --json > h$m.audit.json; echo "hobby $m strict_rc=$?"
done
