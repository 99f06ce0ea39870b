#!/usr/bin/env bash
# Simulate a softlif checkpoint's spiking net on several nodes with SLURM and torchrun.
# One torchrun per node (srun --ntasks-per-node=1); torchrun starts one process per GPU and
# they meet at the first node's rendezvous endpoint. Rank 0 prints and writes the results.
# Tested here only on one CPU node with 2 processes (gloo); multi-node and NCCL are untested.
#
#   sbatch scripts/slurm_simulate.sh runs/cifar10/checkpoint.pt /data/cifar10 runs/cifar10-snn
#
#SBATCH --job-name=softlif-simulate
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=16
#SBATCH --time=02:00:00
set -euo pipefail
CHECKPOINT=${1:?checkpoint.pt}
DATA=${2:?data folder}
OUT=${3:-runs/snn}
GPUS=${GPUS_PER_NODE:-4}
HEAD=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-8}
srun torchrun \
  --nnodes="$SLURM_NNODES" --nproc_per_node="$GPUS" \
  --rdzv_id="$SLURM_JOB_ID" --rdzv_backend=c10d --rdzv_endpoint="$HEAD:29500" \
  -m softlif simulate "$CHECKPOINT" --dataset cifar10 --data-dir "$DATA" \
  --order shuffled --device cuda --no-progress --out "$OUT"
