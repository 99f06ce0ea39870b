#!/usr/bin/env bash
# GPU checks, for a machine with a CUDA device (CI has none): the CUDA tests, then the training
# and simulation benchmarks on the GPU. Writes logs and JSON into ${OUT:-gpu-check}/.
# Usage: scripts/gpu_check.sh   (from the repository root; uses the python3 that has torch)
set -uo pipefail
OUT=${OUT:-gpu-check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH}
PY=${PY:-python3}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
$PY -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, \
'cuda', torch.version.cuda, torch.cuda.get_device_name())" | tee -a "$OUT/gpu.txt"
timeout 200 $PY -m pytest -q -p no:cacheprovider tests/test_cuda.py -rs 2>&1 | tee "$OUT/test_cuda.log"
timeout 100 $PY benchmarks/bench_training.py --device cuda --batch 128 \
  --json "$OUT/bench_training_cuda.json" 2>&1 | tee "$OUT/bench_training_cuda.log"
timeout 200 $PY benchmarks/bench_simulation.py --device cuda --batch 256 --images 1024 \
  --json "$OUT/bench_simulation_cuda.json" 2>&1 | tee "$OUT/bench_simulation_cuda.log"
