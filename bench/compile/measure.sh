#!/usr/bin/env bash
# Compile-time curve of search spaces: generates spaces of N decisions (4 alternatives each),
# compiles each at -O2 and records wall seconds and peak memory (/usr/bin/time -v).
#
# Usage: bench/compile/measure.sh [N...]   (default: 10 20 30 40), from the repository root or
# anywhere; CXX selects the compiler. Prints a Markdown table and writes compile_times.csv in
# the output folder (default build/compile-bench, override with OUT=...).
# Targets (README, DESIGN.md rule 1): N = 40 in < 60 s and < 2.5 GB, growing about linearly.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cxx=${CXX:-g++}
out=${OUT:-$root/build/compile-bench}
mkdir -p "$out"
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10 20 30 40)
csv="$out/compile_times.csv"
echo "decisions,alternatives,wall_seconds,cpu_seconds,peak_mb" > "$csv"
printf '| decisions | alternatives | wall s | cpu s (user+sys) | peak MB | output |\n|---|---|---|---|---|---|\n'
for n in "${sizes[@]}"; do
  src="$out/space_$n.cpp"
  python3 "$here/generate_space.py" "$n" > "$src"
  log="$out/time_$n.log"
  /usr/bin/time -v "$cxx" -std=c++20 -O2 -I "$root/include" "$src" -o "$out/space_$n" 2> "$log" || {
    cat "$log" >&2
    exit 1
  }
  secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0; for (i = 1; i <= n; ++i) s = s * 60 + p[i]; print s}' "$log")
  cpu=$(awk -F': ' '/User time/ {u = $2} /System time/ {s = $2} END {printf "%.2f", u + s}' "$log")
  kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
  mb=$((kb / 1024))
  result=$("$out/space_$n")  # the program runs: every dispatch table is real
  echo "$n,$((4 * n)),$secs,$cpu,$mb" >> "$csv"
  printf '| %d | %d | %s | %s | %d | %s |\n' "$n" "$((4 * n))" "$secs" "$cpu" "$mb" "$result"
done
