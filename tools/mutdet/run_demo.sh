#!/usr/bin/env bash
# MutDet end to end on the synthetic DOTA-layout data (CPU), every step through the project's tools:
#   1. the synthetic DOTA folders cut into 128 px patches (as tools/rotated/run_demo.sh),
#   2. pseudo-labels of the training patches (tools/mutdet/make_pseudo_labels.py with the demo
#      config: connected components instead of SAM, 16 clusters of 32-d embeddings),
#   3. MutDet pre-training of the ARS-DETR demo detector on them,
#   4. the checkpoint converted for fine-tuning (tools/mutdet/convert_pretrained.py),
#   5. the ARS-DETR demo fine-tuned from it and, for comparison, from scratch (same schedule),
#   6. both tested with tools/test.py (val patches merged per image, DOTA VOC07 mAP), and the
#      two mAPs printed.
# Interrupted runs resume; finished steps are skipped. Environment:
#   MUTDET_DEMO_EPOCHS           pre-training epochs (default 6)
#   MUTDET_DEMO_FINETUNE_EPOCHS  fine-tuning epochs (default 12)
#   MUTDET_DEMO_ROOT             folder that receives data/ and work_dirs/ (default: the repository)
#   MUTDET_DEMO_SYNTHETIC        extra arguments of tools/data/make_synthetic.py, e.g.
#                                "--num-train 4 --num-val 2" for a quick check
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bash "$repo/tools/setup_env.sh"
cd "${MUTDET_DEMO_ROOT:-$repo}"
py="${IFKD_MM_VENV:-$repo/.venv}/bin/python"
tools="$repo/tools"
work=work_dirs/mutdet-demo
data=data/synthetic/DOTA
pretrain_epochs="${MUTDET_DEMO_EPOCHS:-6}"
finetune_epochs="${MUTDET_DEMO_FINETUNE_EPOCHS:-12}"
pretrain=$repo/configs/mutdet/demo/mutdet_ars-detr_r18_demo_synthetic-dota-pretrain.py
scratch=$repo/configs/ars-detr/demo/ars-detr_r18_demo_synthetic-dota.py
finetune=$repo/configs/mutdet/demo/ars-detr_r18_demo_synthetic-dota_mutdet-pretrained.py
train() {  # CONFIG WORK_DIR EPOCHS: train, resuming only an interrupted run (tools/train.py's
  # --resume would drop the config's load_from, the converted pre-training, on a first run)
  local resume=()
  [[ -f $2/last_checkpoint ]] && resume=(--resume)
  # shellcheck disable=SC2046
  "$py" "$tools/train.py" "$1" --work-dir "$2" "${resume[@]}" --cfg-options $(schedule "$3")
}
schedule() {  # EPOCHS: the demo schedule shortened to EPOCHS, no validation (tools/test.py follows)
  echo "train_cfg.max_epochs=$1 train_cfg.val_begin=$(($1 + 1))" \
       "param_scheduler.1.end=$1 param_scheduler.1.milestones=[$(($1 * 3 / 4 > 0 ? $1 * 3 / 4 : 1))]"
}

# shellcheck disable=SC2086
"$py" "$tools/data/make_synthetic.py" --out data/synthetic --datasets dota ${MUTDET_DEMO_SYNTHETIC:-}
if [[ ! -d $data/split_128/val/annfiles ]]; then
  rm -rf "$data/split_128"
  "$py" "$tools/data/split_dota.py" --src "$data" --out "$data/split_128" --size 128 \
    --train-overlap 32 --test-overlap 64 --splits train:trainval val:val
fi
"$py" "$tools/mutdet/make_pseudo_labels.py" "$repo"/configs/mutdet/demo/pseudo-labels_components_r18_demo.py \
  --images "$data/split_128/trainval/images" --out "$work/pseudo_labels"
train "$pretrain" "$work/pretrain" "$pretrain_epochs"
"$py" "$tools/mutdet/convert_pretrained.py" "$(cat "$work/pretrain/last_checkpoint")" \
  "$work/pretrain/ars-detr_init.pth"
for run in scratch finetune; do
  config=${!run}
  train "$config" "$work/$run" "$finetune_epochs"
  "$py" "$tools/test.py" "$config" "$(cat "$work/$run/last_checkpoint")" --work-dir "$work/test_$run" \
    | tee "$work/$run.txt"
done

metric() { sed -n "s/^dota\/mAP: //p" "$work/$1.txt"; }
echo
echo "ARS-DETR demo fine-tuned for $finetune_epochs epochs on synthetic DOTA (val, merged, DOTA mAP)"
printf '%-34s %9s\n' initialisation mAP
printf '%-34s %9.3f\n' "from scratch" "$(metric scratch)"
printf '%-34s %9.3f\n' "MutDet pre-training ($pretrain_epochs epochs)" "$(metric finetune)"
