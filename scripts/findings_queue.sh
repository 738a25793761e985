#!/usr/bin/env bash
# The experiments behind docs/findings.md, one after another, each resumable: run it again after an
# interruption (a session's end, a reboot) and every finished arm-seed is reused, every interrupted
# one resumes from its last checkpoint, and arm-seeds another grid already trained are copied
# (kgreason/experiments/share.py). One heavy job at a time: the CPU has 2 cores.
#
#   setsid nohup scripts/findings_queue.sh > experiments/queue.log 2>&1 &
#
# Order: what answers the most claims per CPU hour first. The reward grid's RSFT arms (and its `sft`,
# which every grid shares) answer the RSFT reward claims and give frontier and curriculum their
# controls; then frontier and curriculum need one arm each; trace_style trains two SFT variants;
# the GRPO arms of the reward grid are the most expensive (about 33 min an arm-seed on an AVX2 CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
KG=".venv/bin/kgreason"
run() {
  echo "=== $(date -u +%FT%TZ) kgreason experiment $*"
  "$KG" experiment "$@"
  "$KG" findings --collect
}
run reward --arms rsft_answer,rsft_paper,rsft_kgreason
run frontier
run curriculum
run trace_style
run reward --arms grpo_answer,grpo_paper,grpo_kgreason
run reward
echo "=== $(date -u +%FT%TZ) done"
