#!/usr/bin/env bash
# Issue 14 evidence on the full official MNIST (items 4-6): the paper's MNIST net trained with
# one recipe for four neuron types (LIF, IF, adaptive LIF, Loihi-style quantised LIF with 8-bit
# weights), each converted and simulated on all 10,000 test images; conversion diagnostics of
# the LIF net (where the fc-2000 layer's rate deficit comes from, and longer synapses); and
# energy-aware fine-tuning of the LIF net over the rate-penalty weight (accuracy vs synaptic
# events). Resumable: rerun the same command after an interruption (finished steps are
# skipped, trainings resume). About 6 h on 2 CPU cores alone (run nothing else beside it).
# Usage: scripts/neurons_mnist.sh [MNIST_DIR]; then .venv/bin/python scripts/neurons_report.py
# A smoke run: DATASET=embedded-mnist EPOCHS=1 FT_EPOCHS=1 IMAGES=50 TRAIN_EXTRA="--limit-train
# 500 --limit-test 100 --no-fuse" LIMIT_TRAIN=500 RUNS=/tmp/r RESULTS=/tmp/n scripts/neurons_mnist.sh
set -euo pipefail
D=${1:-../shared/data/mnist}
S=${SOFTLIF:-.venv/bin/softlif}
DATASET=${DATASET:-mnist}
EPOCHS=${EPOCHS:-25}
FT_EPOCHS=${FT_EPOCHS:-4}
RUNS=${RUNS:-runs/neurons}
RESULTS=${RESULTS:-results/neurons}
DATA="--dataset $DATASET"
[ "$DATASET" = embedded-mnist ] || DATA="$DATA --data-dir $D"
IMG=${IMAGES:+--images $IMAGES}
read -r -a TX <<< "${TRAIN_EXTRA:-}"
SIM="$DATA --tau-s 0.005 --presentation-time 0.2 --c0 0.12 --c1 0.2 $IMG"
done_() { [ -f "$1" ]; }

# item 4: one recipe (25 epochs, Adam one-cycle, noise 10 Hz, g 0.02 annealed to 0.002)
neuron() {  # train, then simulate on the test set, one neuron type
  local t=$1 extra
  case $t in
    LIF) extra=() ;;
    IF) extra=(--activation if) ;;
    AdaptiveLIF) extra=(--neuron AdaptiveLIF --neuron-param tau_rc=0.022) ;;
    QuantizedLIF) extra=(--neuron QuantizedLIF) ;;
  esac
  $S train $DATA --epochs "$EPOCHS" "${extra[@]}" "${TX[@]}" --resume --no-progress \
    --out "$RUNS/$t"
  done_ "$RESULTS/$t/simulate.json" || $S simulate "$RUNS/$t/checkpoint.pt" $SIM --no-progress \
    --out "$RESULTS/$t"
}
neuron LIF

# item 6 (right after the LIF net, before the other types): where the LIF net's SNN departs
# from its rate net; then the same net with longer synapses (less shot noise on the dense
# layer's input, if that is the cause)
done_ "$RESULTS/diagnose-LIF/diagnose.json" || \
  $S diagnose "$RUNS/LIF/checkpoint.pt" $SIM --images "${IMAGES:-1000}" --out "$RESULTS/diagnose-LIF"
for tau in 0.01 0.02; do
  done_ "$RESULTS/diagnose-LIF-tau$tau/diagnose.json" || \
    $S diagnose "$RUNS/LIF/checkpoint.pt" $DATA --tau-s "$tau" --presentation-time 0.4 \
      --c0 0.2 --c1 0.4 --images "${IMAGES:-1000}" --out "$RESULTS/diagnose-LIF-tau$tau"
done

for t in IF AdaptiveLIF QuantizedLIF; do neuron "$t"; done

# item 5: energy-aware fine-tuning of the LIF net: `softlif sweep --rate-penalties`, one
# fine-tune and simulation per penalty weight (0: the same fine-tuning without a penalty, the
# reference point), then the Pareto front; resumable (finished points are reused). The small
# files (pareto.json / .png, each point's simulate.json) are copied to $RESULTS/penalty-sweep.
$S sweep "$RUNS/LIF/checkpoint.pt" $SIM --rate-penalties 0,0.001,0.003,0.01,0.03 \
  --finetune-epochs "$FT_EPOCHS" --lr 2e-4 --seed 10 ${LIMIT_TRAIN:+--limit-train $LIMIT_TRAIN} \
  --no-progress --out "$RUNS/penalty-sweep"
mkdir -p "$RESULTS/penalty-sweep"
cp "$RUNS/penalty-sweep/pareto.json" "$RUNS/penalty-sweep/pareto.png" "$RESULTS/penalty-sweep/"
for d in "$RUNS"/penalty-sweep/penalty-*/; do
  mkdir -p "$RESULTS/penalty-sweep/$(basename "$d")"
  cp "$d/simulate.json" "$RESULTS/penalty-sweep/$(basename "$d")/"
done
