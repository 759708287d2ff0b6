#!/usr/bin/env bash
# KD-RNet and DKED end to end on synthetic DOTA-layout data (CPU, about 30 minutes on 2 cores),
# every step through the project's tools:
#   1. write the synthetic DOTA folders (tools/data/make_synthetic.py, 48 train / 16 val images
#      of 256 px) and cut them into 128 px patches (tools/data/split_dota.py),
#   2. train the demo teacher (rotated RetinaNet R50, 36 epochs) and student (R18, 24 epochs),
#   3. distil the teacher into the student with KD-RNet and with DKED (24 epochs each) and
#      export the distilled students (tools/export_student.py: no teacher, no DDC),
#   4. test every model with tools/test.py: the val patches merged per image and scored against
#      the unsplit val labelTxt (MergedDOTAMetric, VOC07 AP50), and print the table.
# Each stage prints one line; its full output goes to work_dirs/demo/logs/rotated/. Interrupted
# runs resume; finished trainings are not repeated. The table is also written as
# work_dirs/demo/rotated_results.{md,json}.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
work=work_dirs/demo
logs="$work/logs/rotated"
stages=13
# shellcheck source=../lib/stages.sh
source tools/lib/stages.sh
data=data/synthetic/DOTA
teacher=rotated-retinanet_r50_fpn_demo_synthetic-dota
student=rotated-retinanet_r18_fpn_demo_synthetic-dota
kd_rnet=kd-rnet_rotated-retinanet_r50-r18_fpn_demo_synthetic-dota
dked=dked_rotated-retinanet_r50-r18_fpn_demo_synthetic-dota

echo "Rotated demo: KD-RNet and DKED, rotated RetinaNet R50 -> R18 on synthetic DOTA (logs: $logs)"
setup_stage
stage "write the synthetic DOTA data" make_synthetic -- \
  "$py" tools/data/make_synthetic.py --out data/synthetic --datasets dota
if [[ ! -d $data/split_128/val/annfiles ]]; then
  rm -rf "$data/split_128"
  stage "cut the images into 128 px patches" split_dota -- \
    "$py" tools/data/split_dota.py --src "$data" --out "$data/split_128" --size 128 \
    --train-overlap 32 --test-overlap 64 --splits train:trainval val:val
else
  stage "cut the images into 128 px patches (already cut)" split_dota -- true
fi

train() {  # LABEL CONFIG: train (or resume) into work_dirs/demo/<its name>
  stage "$1" "train_$(basename "$2" .py)" --result 'loss=loss: ([0-9.]+) +loss_cls' -- \
    "$py" tools/train.py "$2" --work-dir "$work/$(basename "$2" .py)" --resume
}
last() { cat "$work/$1/last_checkpoint"; }
evaluate() {  # LABEL CONFIG CHECKPOINT NAME: tools/test.py into work_dirs/demo/test_NAME
  stage "$1" "test_$4" --result 'mAP=^dota/mAP: ([0-9.]+)' -- \
    "$py" tools/test.py "$2" "$3" --work-dir "$work/test_$4"
}

train "train the teacher, rotated RetinaNet R50" configs/kd-rnet/demo/$teacher.py
train "train the student alone, R18" configs/kd-rnet/demo/$student.py
train "distil with KD-RNet" configs/kd-rnet/demo/$kd_rnet.py
train "distil with DKED" configs/dked/demo/$dked.py
for run in $kd_rnet $dked; do
  stage "export the ${run%%_*} student" "export_${run%%_*}" -- \
    "$py" tools/export_student.py "$(last $run)" "$work/$run/student.pth"
done
evaluate "test the teacher" configs/kd-rnet/demo/$teacher.py "$(last $teacher)" rotated_teacher_r50
evaluate "test the student alone" configs/kd-rnet/demo/$student.py "$(last $student)" \
  rotated_student_r18
evaluate "test the KD-RNet student" configs/kd-rnet/demo/$student.py \
  "$work/$kd_rnet/student.pth" kd-rnet_student_r18
evaluate "test the DKED student" configs/kd-rnet/demo/$student.py "$work/$dked/student.pth" \
  dked_student_r18

echo
"$py" tools/results_table.py \
  --title "Rotated demo, synthetic DOTA val (patches merged per image, DOTA VOC07 AP50)" \
  --row "teacher, rotated RetinaNet R50" "$work/test_rotated_teacher_r50/metrics.json" \
  --row "student R18 alone" "$work/test_rotated_student_r18/metrics.json" \
  --row "R18 distilled with KD-RNet" "$work/test_kd-rnet_student_r18/metrics.json" \
  --row "R18 distilled with DKED" "$work/test_dked_student_r18/metrics.json" \
  --metric mAP=dota/mAP --md "$work/rotated_results.md" --json "$work/rotated_results.json"
echo
echo "table: $work/rotated_results.md, $work/rotated_results.json; logs: $logs/"
echo "checkpoints: $work/$teacher/, $work/$student/,"
echo "             $work/$kd_rnet/student.pth, $work/$dked/student.pth"
