#!/usr/bin/env bash
# Issue 9 evidence: the paper's CIFAR-10 experiment on the JPEG-decoded (lossy) copy of CIFAR-10
# in ../shared/data, with the authors' 0-255 input scale: soft-LIF ANNs trained with noise sigma
# 10 and 0 Hz and the ReLU ANN (40 epochs each, Adam one-cycle, bf16 autocast, all 50,000
# training images), each soft-LIF net converted and simulated on all 10,000 test images (alpha
# 5 ms, 200 ms per image, window 120-200 ms, back to back in a fixed shuffled order), the
# same nets and the ReLU net trained again for 80 epochs (the soft-LIF ones simulated alike), and
# the Table-4 sweep on the sigma-10 nets, the Adam and paper recipes (and two Adam variants)
# compared over 6 epochs, a sigma-10 net without weight decay (40 epochs, simulated), and per
# layer which units of each soft-LIF net fire (results/cifar10/unit_activity.md).
#
# Every step is resumable: rerun the script after an interruption and finished trainings and
# evaluations are reused (`softlif train --resume`, `softlif reproduce`). The sigma-10 and
# sigma-0 nets are trained and simulated first, so the noise ablation exists early. Run nothing else beside it (two
# torch jobs on 2 cores slow each other about 10x). About 40 min per soft-LIF training and
# 30 min for ReLU on the 2-core CPU; then ~1 h of simulation.
#
# Usage: scripts/reproduce_cifar10.sh [CIFAR_JPEG_DIR] [WORK_DIR] [RUNS_DIR]
#   EPOCHS=40 DEVICE=cpu (or cuda) override the budget and the device; SIGMAS="10 0" names the
#   noise nets trained and simulated before the ReLU net (any left out are trained by
#   `reproduce` at the end); EPOCHS_LONG=80 the length of the longer trainings of the SIGMAS
#   nets and the ReLU net, with the Table-4 sweep on the long sigma-10 net (0: none);
#   RECIPE_EPOCHS=6 the length of the Adam-vs-paper recipe comparison (0: none); SEEDS="1 2"
#   other seeds to train the SIGMAS nets with at EPOCHS, ANN only (default none; the
#   committed results have none).
#   NOWD_EPOCHS=40 the length of the sigma-10 net trained without weight decay (0: none).
# Writes checkpoints to RUNS_DIR (default runs/cifar10; not committed) and copies the reports,
# JSON and figures to results/cifar10 (committed).
set -euo pipefail
SRC=${1:-../shared/data/cifar10-jpeg}
WORK=${2:-${TMPDIR:-/tmp}/softlif-cifar10}
RUNS=${3:-runs/cifar10}
EPOCHS=${EPOCHS:-40}
DEVICE=${DEVICE:-cpu}
SIGMAS=${SIGMAS:-10 0}
EPOCHS_LONG=${EPOCHS_LONG:-80}
SL=.venv/bin/softlif
mkdir -p "$WORK" "$RUNS"
# official binary layout, written outside ../shared (read-only)
[ -f "$WORK/cifar-10-batches-bin/test_batch.bin" ] || \
  .venv/bin/python "$SRC/make_cifar10.py" "$WORK" --format bin
DATA=(--dataset cifar10 --data-dir "$WORK")
# the same settings as src/softlif/configs/cifar10.toml, so that `reproduce` below reuses them
TRAIN=("${DATA[@]}" --epochs "$EPOCHS" --weight-decay 0,0,0.004,0.004,0.01 --device "$DEVICE"
       --no-progress --resume)
NOTE="Data: the JPEG-decoded (lossy) copy of CIFAR-10 in ../shared/data/cifar10-jpeg (pixels \
differ from the official ones by 5.8/255 on average), written in the official binary layout by \
its make_cifar10.py; absolute errors are not comparable with the paper's."

# the noise ablation first (sigma 10, the headline net, then sigma 0), each simulated on all
# 10,000 test images as soon as it is trained
for SIGMA in $SIGMAS; do
  $SL train "${TRAIN[@]}" --noise "$SIGMA" --out "$RUNS/softlif-sigma$SIGMA"
  [ -f "$RUNS/snn-sigma$SIGMA/simulate.json" ] || \
    $SL simulate "$RUNS/softlif-sigma$SIGMA/checkpoint.pt" "${DATA[@]}" --order shuffled \
      --device "$DEVICE" --no-progress --out "$RUNS/snn-sigma$SIGMA" > /dev/null
done
# the longer trainings (the 40-epoch nets had not converged: sigma 10 gained 1.8 points from
# 40 to 80 epochs): each soft-LIF net of SIGMAS, simulated alike, then the ReLU net, then the
# Table-4 sweep on the long sigma-10 net (about 2 h per soft-LIF net, 1.3 h ReLU on the 2-core
# CPU); EPOCHS_LONG=0 skips them
if [ "$EPOCHS_LONG" -gt 0 ]; then
  for SIGMA in $SIGMAS; do
    LONG=softlif-sigma$SIGMA-${EPOCHS_LONG}ep
    $SL train "${DATA[@]}" --epochs "$EPOCHS_LONG" --weight-decay 0,0,0.004,0.004,0.01 \
      --device "$DEVICE" --no-progress --resume --noise "$SIGMA" --out "$RUNS/$LONG"
    [ -f "$RUNS/snn-sigma$SIGMA-${EPOCHS_LONG}ep/simulate.json" ] || \
      $SL simulate "$RUNS/$LONG/checkpoint.pt" "${DATA[@]}" --order shuffled \
        --device "$DEVICE" --no-progress --out "$RUNS/snn-sigma$SIGMA-${EPOCHS_LONG}ep" > /dev/null
  done
  $SL train "${DATA[@]}" --epochs "$EPOCHS_LONG" --weight-decay 0,0,0.004,0.004,0.01 \
    --device "$DEVICE" --no-progress --resume --activation relu --no-anneal \
    --out "$RUNS/relu-${EPOCHS_LONG}ep"
  SW=sweep-sigma10-${EPOCHS_LONG}ep
  if [ -f "$RUNS/softlif-sigma10-${EPOCHS_LONG}ep/checkpoint.pt" ] && [ ! -f "$RUNS/$SW/sweep.json" ]; then
    $SL sweep "$RUNS/softlif-sigma10-${EPOCHS_LONG}ep/checkpoint.pt" "${DATA[@]}" --order shuffled \
      --images 5000 --batch-size 50 --taus 0,0.005 --times 0.2 \
      --windows 0.12:0.2,0.01:0.08,0.01:0.06 --device "$DEVICE" --no-progress --out "$RUNS/$SW" \
      --json > /dev/null
  fi
fi
$SL train "${TRAIN[@]}" --activation relu --no-anneal --out "$RUNS/relu"
# the SIGMAS nets again with other seeds (SEEDS, default none), EPOCHS long, ANN and hard-rate
# ANN only: the seed-to-seed spread that the noise ablation has to be read against (about
# 27 min each on the 2-core CPU)
for SEED in ${SEEDS-}; do
  for SIGMA in $SIGMAS; do
    $SL train "${TRAIN[@]}" --noise "$SIGMA" --seed "$SEED" --out "$RUNS/softlif-sigma$SIGMA-seed$SEED"
  done
done
# the two training recipes once at equal length (RECIPE_EPOCHS, default 6; 0 skips): soft LIF,
# noise 10 Hz, Adam one-cycle at lr 2e-3 against the authors' SGD at their CIFAR lr 1e-3
# (biases 2e-3, momentum 0.9, the paper's init), about 4 min each on the 2-core CPU
RECIPE_EPOCHS=${RECIPE_EPOCHS:-6}
if [ "$RECIPE_EPOCHS" -gt 0 ]; then
  for R in adam paper; do
    LR=2e-3; [ "$R" = paper ] && LR=1e-3
    $SL train "${DATA[@]}" --epochs "$RECIPE_EPOCHS" --weight-decay 0,0,0.004,0.004,0.01 \
      --noise 10 --recipe "$R" --lr "$LR" --device "$DEVICE" --no-progress --resume \
      --out "$RUNS/recipe-$R-${RECIPE_EPOCHS}ep"
  done
  # what silences the deeper layers under Adam (results/cifar10/unit_activity.md): Adam with the
  # authors' per-layer init, and Adam without weight decay
  $SL train "${DATA[@]}" --epochs "$RECIPE_EPOCHS" --weight-decay 0,0,0.004,0.004,0.01 \
    --noise 10 --recipe adam --lr 2e-3 --init paper --device "$DEVICE" --no-progress --resume \
    --out "$RUNS/recipe-adam-paperinit-${RECIPE_EPOCHS}ep"
  $SL train "${DATA[@]}" --epochs "$RECIPE_EPOCHS" --weight-decay 0 --noise 10 --recipe adam \
    --lr 2e-3 --device "$DEVICE" --no-progress --resume --out "$RUNS/recipe-adam-nowd-${RECIPE_EPOCHS}ep"
fi
# the sigma-10 net without weight decay (Adam's coupled L2 silences the locally connected
# layers; 3.2 points better at 6 epochs), NOWD_EPOCHS long, simulated like the others
NOWD_EPOCHS=${NOWD_EPOCHS:-40}
if [ "$NOWD_EPOCHS" -gt 0 ]; then
  NOWD=sigma10-nowd$([ "$NOWD_EPOCHS" = 40 ] || echo "-${NOWD_EPOCHS}ep")
  $SL train "${DATA[@]}" --epochs "$NOWD_EPOCHS" --weight-decay 0 --noise 10 --eval-images 1000 \
    --device "$DEVICE" --no-progress --resume --out "$RUNS/softlif-$NOWD"
  [ -f "$RUNS/snn-$NOWD/simulate.json" ] || \
    $SL simulate "$RUNS/softlif-$NOWD/checkpoint.pt" "${DATA[@]}" --order shuffled \
      --device "$DEVICE" --no-progress --out "$RUNS/snn-$NOWD" > /dev/null
fi
.venv/bin/python scripts/cifar10_report.py "$RUNS"  # results/cifar10/{results.json,report.md}
# per layer, which units fire in every soft-LIF net (results/cifar10/unit_activity.{json,md})
.venv/bin/python scripts/cifar10_activity.py "$RUNS" "$WORK"
# reuses the three trainings; evaluates every net on all 10,000 images, sweeps sigma 10
$SL reproduce "${DATA[@]}" --epochs "$EPOCHS" --relu-epochs "$EPOCHS" --noises 0,10 \
  --order shuffled --out "$RUNS" --device "$DEVICE" --no-progress --note "$NOTE"
mkdir -p results/cifar10
(cd "$RUNS" && find . -type f ! -name '*.pt' -print0 | \
  xargs -0 -I{} cp --parents {} "$OLDPWD/results/cifar10/")
