#!/bin/bash
# The image pipeline's GPU paths once, end to end: SimCLR on the paper settings with ResNet-18 on full CIFAR-10,
# 2 epochs (epoch 1 holds warm-up and compilation), kNN and linear probe, with bf16 + channels-last, through
# torchrun (NCCL process group and DDP, one rank), with torch.compile, in plain fp32, then the paper's ResNet-50,
# every one with its views made on the GPU (--augment device); the second variant is the first with the views made
# on the CPU (--augment loader), to measure what the GPU path saves.
# Each variant pretrains afresh in its own run folder and records into its own file: the variants share settings
# and seed, so one records file would find the later ones already done.
# Usage: benchmarks/gpu_image.sh [FLAGS...]   (FLAGS go to every run, after the defaults; BUDGET_S caps the whole;
# on a copied tree set HARDNEG_COMMIT to the commit it was copied from: its .git there may be stale)
set -u
py=${PYTHON:-python3}
deadline=$((SECONDS + ${BUDGET_S:-540}))
export PYTHONUNBUFFERED=1
base=(--profile paper --arch resnet18 --objective ntxent --seed 0 --epochs 2 --device cuda)

variant() {  # NAME SECONDS COMMAND...: skipped when fewer than SECONDS are left
  local name=$1 limit=$2 start=$SECONDS
  shift 2
  if ((deadline - SECONDS < limit)); then echo "=== $name: skipped, $((deadline - SECONDS)) s left"; return; fi
  echo "=== $name: $*"
  timeout "$limit" "$@" "${base[@]}" --records "tables/records/image-gpu-$name.jsonl" --out-dir "runs/gpu-$name" "${extra[@]}"
  echo "=== $name: rc=$? after $((SECONDS - start)) s"
}

extra=("$@")
nvidia-smi -L 2>/dev/null
$py -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU")'
variant bf16 150 "$py" -m image run --bf16 --channels-last --augment device
variant loader 150 "$py" -m image run --bf16 --channels-last --augment loader
variant ddp 100 "$py" -m torch.distributed.run --standalone --nproc_per_node 1 -m image run --bf16 --channels-last \
  --augment device
variant compile 150 "$py" -m image run --bf16 --channels-last --compile --augment device
variant fp32 110 "$py" -m image run --augment device
base=(--profile paper --epochs 1 --objective ntxent --seed 0 --device cuda)
variant resnet50 120 "$py" -m image run --bf16 --channels-last --augment device
