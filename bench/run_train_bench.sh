#!/usr/bin/env bash
# Runs the reference-CNN benchmark of qnas (bench_train_step) and of PyTorch
# (pytorch_reference.py) in the same session, alternating the two ROUNDS times per thread
# count, and prints a table of medians (images/s) and ratios.
#
#   bench/run_train_bench.sh [build-dir]       (default: build/bench; build it with the bench preset)
#   ROUNDS=5 THREADS="1 2" STEPS=30 bench/run_train_bench.sh
#
# OpenBLAS 0.3.21 does not recognise every recent CPU and then falls back to its generic
# (SSE3 "Prescott") kernels; set OPENBLAS_CORETYPE (e.g. SkylakeX, Haswell) to pick the right
# ones, or build with QNAS_BLAS=BLIS (cmake --preset bench -B build/bench-blis -DQNAS_BLAS=BLIS).
# The script passes OPENBLAS_CORETYPE through unchanged and prints the BLAS and kernels in use.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../build/bench}"
bin="$build/bench/bench_train_step"
py="${PYTHON:-/usr/bin/python3}"
rounds="${ROUNDS:-5}"
threads_list="${THREADS:-1 2}"
steps="${STEPS:-30}"
[[ -x "$bin" ]] || { echo "missing $bin: cmake --preset bench -B $build && cmake --build $build --target bench_train_step" >&2; exit 1; }
"$py" -c "import torch" 2>/dev/null || { echo "PyTorch not found for $py (apt-get install -y python3-torch)" >&2; exit 1; }

tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
core="$(OPENBLAS_NUM_THREADS=1 BLIS_NUM_THREADS=1 "$bin" --mode infer_f32 --repeats 1 --steps 1 | sed -n 's/^# blas core \([^,]*\),.*/\1/p')"
echo "BLAS: ${core:-unknown}; OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-<unset>}; load: $(cut -d' ' -f1-3 /proc/loadavg)"
for t in $threads_list; do
  for ((r = 1; r <= rounds; ++r)); do
    OPENBLAS_NUM_THREADS=$t BLIS_NUM_THREADS=$t OMP_NUM_THREADS=$t "$bin" --repeats 3 --steps "$steps" | grep -v '^#' | sed "s/^/$t /" >> "$tmp"
    OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t "$py" "$here/pytorch_reference.py" --threads "$t" --repeats 3 \
      --steps "$steps" | sed "s/^/$t /" >> "$tmp"
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

# Median over rounds of each (threads, library, mode); then the table.
"$py" - "$tmp" <<'PY'
import statistics, sys, collections
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    t, lib, mode, rate, _ = line.split()
    runs[(int(t), lib, mode)].append(float(rate))
med = {k: statistics.median(v) for k, v in runs.items()}
print(f"{'threads':>7} {'mode':<11} {'qnas img/s':>11} {'pytorch img/s':>14} {'qnas/pytorch':>13} {'vs qnas f32':>12} {'rounds':>7}")
for t in sorted({k[0] for k in med}):
    base = med.get((t, "qnas", "train_f32"))
    for mode in ("train_f32", "infer_f32", "train_q8", "train_bfp4"):
        q = med.get((t, "qnas", mode))
        if q is None:
            continue
        p = med.get((t, "pytorch", mode))
        ratio = f"{q / p:.2f}x" if p else "-"
        slow = f"{base / q:.2f}x time" if mode.startswith("train") and base else "-"
        print(f"{t:>7} {mode:<11} {q:>11.0f} {(f'{p:.0f}' if p else '-'):>14} {ratio:>13} {slow:>12} {len(runs[(t, 'qnas', mode)]):>7}")
PY
