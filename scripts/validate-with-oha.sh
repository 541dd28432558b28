#!/usr/bin/env bash
# Cross-checks splitbench's latency numbers against an independent generator, oha, on the same
# machine, the same endpoint, the same rate and the same core layout (generator on core 0,
# system under test on core 1). Prints both results; docs/validation.md explains them.
#
# Needs: oha (cargo install oha), taskset, GNU time (/usr/bin/time), two or more cores.
# Usage: scripts/validate-with-oha.sh [rate] [seconds] [path]
# SPLITBENCH=<path> runs another splitbench binary (e.g. one built from an older commit) against
# the same servers; BIN_DIR=<dir> takes the servers from there (default target/release).
# With BUSY_CORE=1 it also repeats the oha run with a nice-19 busy loop keeping core 0 awake,
# to show how much of oha's latency is its core waking up from idle (docs/validation.md).
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-2000}
seconds=${2:-20}
path=${3:-/health}
command -v oha >/dev/null || { echo "oha is not installed: cargo install oha" >&2; exit 1; }

cargo build --release -q -p bench -p monolith -p microservices --bins
splitbench=${SPLITBENCH:-target/release/splitbench}
bin_dir=${BIN_DIR:-target/release}
work=$(mktemp -d)
port=18199
taskset -c 1 "$bin_dir/monolith" --port "$port" --database-url "sqlite:$work/monolith.db" >"$work/monolith.log" 2>&1 &
monolith=$!
trap 'kill $monolith 2>/dev/null || true; wait $monolith 2>/dev/null || true; rm -rf "$work"' EXIT
until curl -fs "http://127.0.0.1:$port/ready" >/dev/null; do sleep 0.2; done

echo "== oha --latency-correction, $rate req/s for ${seconds}s on $path (generator on core 0)"
# Warm-up first, as splitbench does, then the measured run.
taskset -c 0 oha --no-tui -z 3s -q "$rate" "http://127.0.0.1:$port$path" >/dev/null
# The client's own CPU per request (user + system, from GNU time): one of the two causes of the
# difference docs/validation.md explains.
taskset -c 0 /usr/bin/time -f "%U %S" -o "$work/oha.cpu" \
  oha --no-tui --latency-correction -z "${seconds}s" -q "$rate" "http://127.0.0.1:$port$path"
read -r user system <"$work/oha.cpu"
awk -v u="$user" -v s="$system" -v n=$((rate * seconds)) \
  'BEGIN { printf "oha client CPU: %.2f s user + %.2f s system = %.1f µs per request\n", u, s, (u + s) * 1e6 / n }'

if [ "${BUSY_CORE:-0}" = 1 ]; then
  echo "== oha again, with a nice-19 busy loop keeping core 0 awake"
  taskset -c 0 nice -n 19 sh -c 'while :; do :; done' &
  spinner=$!
  taskset -c 0 oha --no-tui --latency-correction -z "${seconds}s" -q "$rate" "http://127.0.0.1:$port$path"
  kill $spinner
fi

kill $monolith; wait $monolith 2>/dev/null || true
trap 'rm -rf "$work"' EXIT

mix=health
[ "$path" = "/health" ] || mix=product-page
echo "== splitbench, $rate req/s for ${seconds}s, mix $mix (constant arrivals, like oha -q)"
"$splitbench" run --arch monolith --mix "$mix" --arrivals constant --rate "$rate" \
  --duration "${seconds}s" --warmup 3s --bin-dir "$bin_dir" --out "$work" --run-id validation
grep -E '^\| (commit|binaries)' "$work/validation/report.md" | cut -c1-200
grep -A4 '^| architecture | offered' "$work/validation/report.md"
