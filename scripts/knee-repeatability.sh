#!/usr/bin/env bash
# How repeatable is one attempt near each architecture's capacity? Starts a fresh system for
# every window, alternating the architectures (so a slow period of the machine shows in both),
# and prints each window's throughput, p99 and CPU per request. The sweep decides capacity from
# windows like these; their spread at one rate is why one sweep's answer moves between runs
# (README, "Known limits").
#
# Usage: scripts/knee-repeatability.sh [pairs] [microservices rate] [monolith rate] [out dir]
# Defaults: 8 pairs, 2500 and 4000 req/s (below both capacities on the CI machine kind),
# results/<date>-knee-repeatability. Each window: 4 s warm-up, 8 s measured, the shop mix.
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=${1:-8}
micro_rate=${2:-2500}
mono_rate=${3:-4000}
out=${4:-results/$(date -u +%Y%m%d)-knee-repeatability}
cargo build --release -q -p bench -p monolith -p microservices --bins
mkdir -p "$out"
for i in $(seq 1 "$pairs"); do
  for arch_rate in "microservices $micro_rate" "monolith $mono_rate"; do
    set -- $arch_rate
    line=$(target/release/splitbench run --arch "$1" --rate "$2" --warmup 4s --duration 8s \
      --out "$out" --run-id "$1-$i" 2>&1 | grep -E "^$1 +[0-9]")
    echo "$(date -u +%T) $i $1 $(echo "$line" | grep -oE '[0-9.]+ req/s|[0-9.]+ CPU-ms/request|p99 +[0-9.]+ [mµ]?s' | head -4 | tr '\n' ' ')" | tee -a "$out/summary.txt"
  done
done
