#!/usr/bin/env bash
# Runs bench_quantize ROUNDS times (default 5) and prints, per format, the median over rounds of
# its time and of its ratio to memcpy (each round measures memcpy itself, so a round's ratio is
# taken within that round), with the CPU, the date and the load average before and after.
# bench_quantize exits 1 when a format misses its target; the table shows every round anyway.
#
#   bench/run_quantize_bench.sh [build-dir]     (default: build/bench; build it with the bench preset)
#   ROUNDS=7 REPEATS=15 bench/run_quantize_bench.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../build/bench}"
bin="$build/bench/bench_quantize"
rounds="${ROUNDS:-5}"
repeats="${REPEATS:-15}"
[[ -x "$bin" ]] || { echo "missing $bin: cmake --preset bench && cmake --build --preset bench --target bench_quantize" >&2; exit 1; }
tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(lscpu | sed -n 's/^Model name: *//p' | head -1); $(nproc) CPUs; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= rounds; ++r)); do { "$bin" "$repeats" || true; } | sed "s/^/$r /" >> "$tmp"; done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg); $rounds rounds of bench_quantize $repeats"
python3 - "$tmp" <<'PY'
import collections, statistics, sys
ms, ratio, order = collections.defaultdict(list), collections.defaultdict(list), []
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) < 5 or f[1] in ("format", "scaled"):
        continue
    try:
        t, x = float(f[2]), float(f[4])
    except ValueError:
        continue
    if f[1] not in ms:
        order.append(f[1])
    ms[f[1]].append(t)
    ratio[f[1]].append(x)
print("| format | median ms | median x memcpy | min-max x memcpy |")
print("|---|---:|---:|---|")
for k in order:
    print(f"| `{k}` | {statistics.median(ms[k]):.2f} | {statistics.median(ratio[k]):.2f} | {min(ratio[k]):.2f}-{max(ratio[k]):.2f} |")
PY
