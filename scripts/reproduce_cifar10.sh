#!/usr/bin/env bash
# Issue 4 evidence: the paper's CIFAR-10 experiment (ReLU ANN; soft-LIF ANNs trained with noise
# sigma 0, 10 and 20 Hz; each converted and simulated; the Table-4 sweep for sigma 10) on the
# JPEG-decoded (lossy) copy of CIFAR-10 in ../shared/data, as far as fits 2 CPU cores:
# 12 epochs per net, SNN errors on the first 2,000 test images. About 75 minutes alone on the
# machine (run nothing else beside it). Writes runs/cifar10 (checkpoints, not committed) and
# copies the reports, JSON and figures to results/cifar10 (committed).
# Usage: scripts/reproduce_cifar10.sh [CIFAR_JPEG_DIR] [WORK_DIR]
set -euo pipefail
SRC=${1:-../shared/data/cifar10-jpeg}
WORK=${2:-${TMPDIR:-/tmp}/softlif-cifar10}
mkdir -p "$WORK"
# official binary layout, written outside ../shared (read-only)
[ -d "$WORK/cifar-10-batches-bin" ] || .venv/bin/python "$SRC/make_cifar10.py" "$WORK" --format bin
.venv/bin/softlif reproduce --dataset cifar10 --data-dir "$WORK" --epochs 12 --relu-epochs 12 \
  --images 2000 --order shuffled --out runs/cifar10 --no-progress
mkdir -p results/cifar10
(cd runs/cifar10 && find . -type f ! -name '*.pt' -print0 | \
  xargs -0 -I{} cp --parents {} ../../results/cifar10/)
