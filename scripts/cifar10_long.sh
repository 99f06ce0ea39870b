#!/usr/bin/env bash
# Issue 28: the long CIFAR-10 trainings, trained so that they outlive the machine. Each net
# trains into checkpoints/in-training/NAME/ (checkpoint.safetensors: weights, optimizer state,
# moving average and generator states, overwritten after every epoch; config.json). Commit that
# folder before a session ends; the next machine resumes it with this same command (`softlif
# train --resume`: bit for bit on a machine of the same kind; the precision is "auto" as asked,
# so a CPU without native bf16 continues in float32, a GPU in bf16). When a net's last epoch is done the script prints so; it is then
# simulated and published to the model zoo, and its folder removed (see README, Results).
#
# Usage: NAME=cifar10-modern-sigma10 scripts/cifar10_long.sh [CIFAR_JPEG_DIR] [WORK_DIR]
#   RECIPE=modern LR=0.02 EPOCHS=150 NOISE=10 ACTIVATION=softlif SEED=0 DEVICE=cpu
# Run in the background (nohup ... &); one torch job at a time on a 2-core machine.
set -euo pipefail
SRC=${1:-../shared/data/cifar10-jpeg}
WORK=${2:-${TMPDIR:-/tmp}/softlif-cifar10}
NAME=${NAME:-cifar10-modern-sigma10}
RECIPE=${RECIPE:-modern}
LR=${LR:-0.02}
EPOCHS=${EPOCHS:-150}
NOISE=${NOISE:-10}
ACTIVATION=${ACTIVATION:-softlif}
SEED=${SEED:-0}
DEVICE=${DEVICE:-cpu}
OUT=checkpoints/in-training/$NAME
mkdir -p "$WORK" "$OUT"
[ -f "$WORK/cifar-10-batches-bin/test_batch.bin" ] || \
  .venv/bin/python "$SRC/make_cifar10.py" "$WORK" --format bin
EXTRA=()
if [ "$ACTIVATION" = relu ]; then EXTRA=(--no-anneal); else EXTRA=(--noise "$NOISE"); fi
.venv/bin/softlif train --dataset cifar10 --data-dir "$WORK" --activation "$ACTIVATION" \
  --recipe "$RECIPE" --lr "$LR" --epochs "$EPOCHS" --seed "$SEED" \
  --weight-decay 0,0,0.004,0.004,0.01 --eval-images 2000 --format safetensors \
  --device "$DEVICE" --no-progress --resume "${EXTRA[@]}" --out "$OUT"
echo "$NAME: all $EPOCHS epochs trained ($OUT/checkpoint.safetensors)"
