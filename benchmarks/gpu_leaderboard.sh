#!/bin/bash
# One GPU slice of the image leaderboard in the paper's regime (issue 40): the tuned NT-Xent, HCL hard at its paper
# default (beta 1, tau_plus 0.1) and the image column's strongest family, each a ResNet-18 on full CIFAR-10
# (--profile paper --arch resnet18, bf16 + channels-last, views made on the GPU by --augment device), all three
# packed onto the one GPU at once, each under `timeout` so the whole script ends inside BUDGET_S (9 minutes). One
# fresh seed per run of the script; the records go to RECORDS_DIR/image-gpu-leaderboard.jsonl (one file: appends
# are locked), to be committed; the page shows them as their own GPU column with n stated, never pooled with CPU runs.
#
# Usage: benchmarks/gpu_leaderboard.sh RECORDS_DIR [SEED] [--dry-run]
#   SEED       default: the smallest seed >= 0 not yet in RECORDS_DIR/*.jsonl
#   --dry-run  print the commands and the plan, run nothing
# Environment (defaults in brackets). The tuned NT-Xent and the strongest family default to stage 1's selections in
# the committed records (`python -m benchmarks selections --modality image`: NT-Xent's selected configuration, and
# of the other selected families the one with the highest stage-1 mean, other than the HCL arm; while stage 1 is
# incomplete that is the strongest so far, and the script says so); the bracketed values stand in where none is:
#   NTXENT_SPEC [ntxent]  NTXENT_T [0.2]                    the tuned NT-Xent
#   HCL_SPEC [hard:beta=1,tau_plus=0.1]  HCL_T [0.5]        HCL hard at the paper's defaults
#   BEST_SPEC [hard:beta=2,tau_plus=0.1]  BEST_T [0.5]      the image column's strongest family
#   BUDGET_S [540]        wall-clock limit of the whole script
#   RESERVE_S [150]       of it, not training: start-up and data (40), the random-init evaluation (45), the final
#                         kNN + linear probe (50), margin (15)
#   SEC_PER_EPOCH [8]     seconds per epoch of ONE run while three share the GPU. 8 is an estimate: a lone run
#                         took 4.4 s/epoch on an H200 (tables/records/image-gpu-bf16.jsonl), and three packed runs
#                         are assumed 1.8x slower each; set it from the epoch_s of the first slice's records.
#                         100 epochs each needs <= (BUDGET_S - RESERVE_S) / 100 = 3.9 s.
#   EPOCHS                overrides the epochs computed from the three above
#   GPU_FLAGS [--bf16 --channels-last]   OUT_DIR [runs/gpu-leaderboard] (checkpoints, logs)   PYTHON [python3]
# A run that times out records nothing (its checkpoints stay in OUT_DIR), so the epoch count errs low.
set -u
usage() { sed -n '9,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

dry=0
positional=()
for arg in "$@"; do
  case $arg in
    --dry-run) dry=1 ;;
    -h|--help) usage ;;
    -*) echo "unknown option $arg" >&2; usage ;;
    *) positional+=("$arg") ;;
  esac
done
((${#positional[@]} >= 1 && ${#positional[@]} <= 2)) || usage
dir=${positional[0]}
py=${PYTHON:-python3}
budget=${BUDGET_S:-540}
reserve=${RESERVE_S:-150}
sec_per_epoch=${SEC_PER_EPOCH:-8}
out_root=${OUT_DIR:-runs/gpu-leaderboard}
read -r -a gpu_flags <<< "${GPU_FLAGS:---bf16 --channels-last}"
deadline=$((SECONDS + budget))

if ((${#positional[@]} == 2)); then
  seed=${positional[1]}
  [[ $seed =~ ^[0-9]+$ ]] || { echo "SEED must be a non-negative integer, got $seed" >&2; exit 2; }
else  # the smallest seed no record in the folder has
  used=" $(cat "$dir"/*.jsonl 2>/dev/null | grep -o '"seed": *[0-9]*' | grep -o '[0-9]*$' | sort -nu | tr '\n' ' ')"
  seed=0
  while [[ $used == *" $seed "* ]]; do seed=$((seed + 1)); done
fi
if [[ -n ${EPOCHS:-} ]]; then
  epochs=$EPOCHS
else
  epochs=$(awk -v b="$budget" -v r="$reserve" -v s="$sec_per_epoch" 'BEGIN { e = int((b - r) / s); print (e < 1 ? 1 : e) }')
fi
records="$dir/image-gpu-leaderboard.jsonl"
out="$out_root/seed$seed"
hcl="${HCL_SPEC:-hard:beta=1,tau_plus=0.1}|${HCL_T:-0.5}"
selected=$("$py" -m benchmarks selections --modality image 2>/dev/null)  # empty where it cannot run: the defaults
tuned=$(awk -F'\t' '$3 == "ntxent" && $4 !~ /^waiting/ {print $4 "|" $5}' <<< "$selected")
tuned=${tuned:-ntxent|0.2}
best=$(awk -F'\t' -v hcl="$hcl" '$3 != "ntxent" && $4 !~ /^waiting/ && $6 != "" && $4 "|" $5 != hcl {print $6 "\t" $4 "|" $5}' \
       <<< "$selected" | sort -gr | head -n 1 | cut -f 2)
best=${best:-hard:beta=2,tau_plus=0.1|0.5}
waiting=$(grep -c $'\twaiting: ' <<< "$selected")
arms=("ntxent|${NTXENT_SPEC:-${tuned%|*}}|${NTXENT_T:-${tuned#*|}}"
      "hcl|$hcl"
      "best|${BEST_SPEC:-${best%|*}}|${BEST_T:-${best#*|}}")

echo "=== seed $seed, $epochs epochs per run, 3 runs packed on one GPU, budget ${budget} s; records: $records"
((epochs >= 100)) || echo "=== note: $epochs epochs is under the target of 100 (SEC_PER_EPOCH=$sec_per_epoch)"
if [[ -z $selected ]]; then echo "=== note: no stage-1 selections could be read; the arms are the script's defaults"
elif ((waiting)); then echo "=== note: image stage 1 still waits on $waiting families: 'best' is the strongest selected so far"; fi
commands=()
for arm in "${arms[@]}"; do
  IFS='|' read -r name spec temperature <<< "$arm"
  command=("$py" -m image run --profile paper --arch resnet18 --device cuda "${gpu_flags[@]}" --augment device
           --epochs "$epochs" --seed "$seed" --objective "$spec" --temperature "$temperature" --records "$records" --out-dir "$out")
  commands+=("$name|$(printf '%q ' "${command[@]}")")
done
if ((dry)); then
  for entry in "${commands[@]}"; do echo "${entry%%|*}: timeout <to the deadline> ${entry#*|}"; done
  exit 0
fi

mkdir -p "$dir" "$out"
export PYTHONUNBUFFERED=1
nvidia-smi -L 2>/dev/null
# Decode the JPEG zip into the cache once, before three processes would each do it.
timeout 120 "$py" -c 'import torch; from image.data import load_dataset
load_dataset("cifar10-jpeg"); print("torch", torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU")'
pids=()
for entry in "${commands[@]}"; do
  name=${entry%%|*}
  limit=$((deadline - SECONDS - 5))
  echo "=== $name (timeout $limit s): ${entry#*|}"
  eval "timeout $limit ${entry#*|}" > "$out/$name.log" 2>&1 &
  pids+=($!)
done
status=0
for i in "${!pids[@]}"; do
  wait "${pids[$i]}"
  rc=$?
  name=${commands[$i]%%|*}
  echo "=== $name: rc=$rc$( ((rc == 124)) && echo ' (timed out: nothing recorded)')"
  tail -n 5 "$out/$name.log"
  ((rc == 0)) || status=1
done
echo "=== done in $SECONDS s; records in $records"
exit $status
