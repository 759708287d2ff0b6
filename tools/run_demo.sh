#!/usr/bin/env bash
# The main job on the built-in demo data, from nothing but Python and git: distil a RetinaNet
# ResNet-34 teacher into a ResNet-18 student with IFKD and compare it with the student alone.
#   1. set up the environment (tools/setup_env.sh, idempotent) and write the synthetic
#      ShipRSImageNet-layout data (tools/data/make_synthetic.py),
#   2. train the teacher (R34, 6 epochs), the student alone and the IFKD-distilled student (R18,
#      3 epochs each) with tools/train.py, export the distilled student (tools/export_student.py),
#   3. test the three with tools/test.py (COCO bbox mAP on the val split) and print the table,
#   4. draw their detections on one val image side by side (each model's 3 best, score >= 0.1:
#      the distilled student's scores are softer, like its teacher's) and the distillation's loss
#      curves.
# Each stage prints one line; its full output goes to <work-dir>/logs/. Interrupted runs resume
# from their last checkpoint when run again; finished trainings are not repeated.
#
#   bash tools/run_demo.sh [--seed N] [--work-dir DIR]
#
# --seed (default 0) seeds every training (randomness.seed; the synthetic data stay the same);
# each seed has its own work dir, by default work_dirs/demo/seed_N.
# For tests: IFKD_DEMO_EPOCHS overrides the three trainings' epochs, IFKD_DEMO_DATA_ARGS is passed
# to make_synthetic.py after the demo's own --num-train 192 --num-val 128 (so it can override
# them), IFKD_DEMO_DATA_ROOT moves the data (default data/synthetic).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
# shellcheck source=lib/stages.sh
source tools/lib/stages.sh
parse_seed_args work_dirs/demo "$@"
logs="$work/logs"
stages=10
start=$SECONDS

echo "IFKD demo: teacher R34 -> student R18 on synthetic ShipRSImageNet, seed $seed (logs: $logs)"
setup_stage
data_root="${IFKD_DEMO_DATA_ROOT:-data/synthetic}"
demo=configs/demo
teacher=retinanet_r34_fpn_demo_synthetic-shiprs
student=retinanet_r18_fpn_demo_synthetic-shiprs
distilled=ifkd_retinanet_r34-r18_fpn_demo_synthetic-shiprs
options=(randomness.seed="$seed")
# the demo configs read data/synthetic/ShipRSImageNet/: a moved data root and fewer epochs
if [[ -n ${IFKD_DEMO_DATA_ROOT:-} ]]; then
  ship="$data_root/ShipRSImageNet/"
  options+=(train_dataloader.dataset.data_root="$ship" val_dataloader.dataset.data_root="$ship"
            test_dataloader.dataset.data_root="$ship"
            val_evaluator.ann_file="${ship}COCO_Format/ShipRSImageNet_bbox_val_level_3.json"
            test_evaluator.ann_file="${ship}COCO_Format/ShipRSImageNet_bbox_val_level_3.json")
fi
if [[ -n ${IFKD_DEMO_EPOCHS:-} ]]; then
  options+=(train_cfg.max_epochs="$IFKD_DEMO_EPOCHS" train_cfg.val_interval="$IFKD_DEMO_EPOCHS")
fi
train() {  # LABEL CONFIG_NAME [--cfg-options ...]: train (or resume) into $work/CONFIG_NAME
  local label="$1" name="$2"
  shift 2
  stage "$label" "train_$name" --result 'loss=loss: ([0-9.]+) +loss_cls' -- \
    "$py" tools/train.py "$demo/$name.py" --work-dir "$work/$name" --resume \
    --cfg-options "${options[@]}" "$@"
}
evaluate() {  # LABEL CONFIG_NAME CHECKPOINT TEST_NAME: tools/test.py into $work/test_TEST_NAME
  stage "$1" "test_$4" --result 'mAP=^coco/bbox_mAP: (\S+)' \
    --result 'AP50=^coco/bbox_mAP_50: (\S+)' -- \
    "$py" tools/test.py "$demo/$2.py" "$3" --work-dir "$work/test_$4" \
    --cfg-options "${options[@]}"
}
last() { cat "$work/$1/last_checkpoint"; }

# shellcheck disable=SC2086  # IFKD_DEMO_DATA_ARGS is a list of arguments
stage "write the synthetic data ($data_root)" make_synthetic -- \
  "$py" tools/data/make_synthetic.py --out "$data_root" --datasets shiprs --num-train 192 \
  --num-val 128 ${IFKD_DEMO_DATA_ARGS:-}
train "train the teacher, RetinaNet R34" "$teacher"
train "train the student alone, RetinaNet R18" "$student"
train "distil the teacher into the student (IFKD)" "$distilled" \
  model.teacher.checkpoint="$(last "$teacher")"
stage "export the distilled student" export -- \
  "$py" tools/export_student.py "$(last "$distilled")" "$work/$distilled/student.pth"
evaluate "test the teacher" "$teacher" "$(last "$teacher")" teacher
evaluate "test the student alone" "$student" "$(last "$student")" student
evaluate "test the distilled student" "$student" "$work/$distilled/student.pth" ifkd_student
# both pictures in one stage: $0 python, $1 work dir, $2 configs, $3/$4 teacher config/checkpoint,
# $5/$6 student config/checkpoint, $7 distilled student, $8 distillation run, ${@:9} cfg-options
stage "draw detections and loss curves" pictures -- bash -c '
  "$0" tools/compare_detections.py --out "$1/comparison.png" --index 0 --score-thr 0.1 --top-k 3 \
    --model "teacher R34" "$2/$3.py" "$4" --model "student R18" "$2/$5.py" "$6" \
    --model "IFKD student R18" "$2/$5.py" "$7" --cfg-options "${@:9}" &&
  "$0" tools/plot_losses.py "$1/$8" --out "$1/loss_curves.png"' \
  "$py" "$work" "$demo" "$teacher" "$(last "$teacher")" "$student" "$(last "$student")" \
  "$work/$distilled/student.pth" "$distilled" "${options[@]}"

echo
title="IFKD demo, synthetic ShipRSImageNet val (COCO bbox), seed $seed"
"$py" tools/results_table.py --title "$title" \
  --row "teacher RetinaNet R34" "$work/test_teacher/metrics.json" \
  --row "student R18 alone" "$work/test_student/metrics.json" \
  --row "student R18 distilled with IFKD" "$work/test_ifkd_student/metrics.json" \
  --metric mAP=coco/bbox_mAP --metric AP50=coco/bbox_mAP_50 --metric AP75=coco/bbox_mAP_75 \
  --md "$work/results.md" --json "$work/results.json"
echo
echo "table:       $work/results.md, $work/results.json"
echo "pictures:    $work/comparison.png (detections), $work/loss_curves.png (distillation losses)"
echo "checkpoints: $work/$teacher/, $work/$student/, $work/$distilled/student.pth"
echo "logs:        $logs/ (one per stage) and each work dir's mmengine log"
echo "done in $(( (SECONDS - start) / 60 ))m$(( (SECONDS - start) % 60 ))s"
