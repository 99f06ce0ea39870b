#!/usr/bin/env bash
# Issue 28, item 2: the authors' CIFAR-10 recipe (--recipe paper: cuda-convnet SGD, constant lr
# 1e-3 with the two drops, the first phase on 80% of the images, each phase scaled to EPOCHS)
# against the modern one (--recipe modern: Nesterov SGD, one-cycle, decoupled weight decay,
# label smoothing 0.1, moving average of the weights) at equal epochs and seed, soft LIF with
# 10 Hz Gaussian noise, on the JPEG-decoded copy of CIFAR-10 (lossy); then the comparison
# (scripts/cifar10_recipes.py -> results/cifar10/recipes.{json,md}).
#
# Resumable: rerun after an interruption (checkpoints are safetensors, RUNS/NAME/). One torch
# job at a time on a 2-core machine.
#
# Usage: scripts/cifar10_recipes.sh [CIFAR_JPEG_DIR] [WORK_DIR] [RUNS_DIR]
#   EPOCHS=15 SEED=0 MODERN_LRS="0.02 0.05" (one modern run each) MODERN_INIT=default
#   DEVICE=cpu
set -euo pipefail
SRC=${1:-../shared/data/cifar10-jpeg}
WORK=${2:-${TMPDIR:-/tmp}/softlif-cifar10}
RUNS=${3:-runs/cifar10-recipes}
EPOCHS=${EPOCHS:-15}
SEED=${SEED:-0}
MODERN_LRS=${MODERN_LRS:-0.02 0.05}
MODERN_INIT=${MODERN_INIT:-default}
DEVICE=${DEVICE:-cpu}
SL=.venv/bin/softlif
mkdir -p "$WORK" "$RUNS"
[ -f "$WORK/cifar-10-batches-bin/test_batch.bin" ] || \
  .venv/bin/python "$SRC/make_cifar10.py" "$WORK" --format bin
COMMON=(--dataset cifar10 --data-dir "$WORK" --epochs "$EPOCHS" --seed "$SEED" --noise 10
        --weight-decay 0,0,0.004,0.004,0.01 --eval-images 2000 --format safetensors
        --device "$DEVICE" --no-progress --resume)
$SL train "${COMMON[@]}" --recipe paper --out "$RUNS/paper-${EPOCHS}ep"
for LR in $MODERN_LRS; do
  $SL train "${COMMON[@]}" --recipe modern --lr "$LR" --init "$MODERN_INIT" \
    --out "$RUNS/modern-lr$LR-${EPOCHS}ep"
done
.venv/bin/python scripts/cifar10_recipes.py "$RUNS" "$WORK"
