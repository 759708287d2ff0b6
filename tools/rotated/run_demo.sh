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
# Interrupted runs resume; finished steps are skipped. The environment is set up first
# (tools/setup_env.sh, idempotent).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bash "$repo/tools/setup_env.sh"
cd "$repo"
py="${IFKD_MM_VENV:-$repo/.venv}/bin/python"
work=work_dirs/demo
data=data/synthetic/DOTA
teacher=rotated-retinanet_r50_fpn_demo_synthetic-dota
student=rotated-retinanet_r18_fpn_demo_synthetic-dota
kd_rnet=kd-rnet_rotated-retinanet_r50-r18_fpn_demo_synthetic-dota
dked=dked_rotated-retinanet_r50-r18_fpn_demo_synthetic-dota

"$py" tools/data/make_synthetic.py --out data/synthetic --datasets dota
if [[ ! -d $data/split_128/val/annfiles ]]; then
  rm -rf "$data/split_128"
  "$py" tools/data/split_dota.py --src "$data" --out "$data/split_128" --size 128 \
    --train-overlap 32 --test-overlap 64 --splits train:trainval val:val
fi

train() {  # CONFIG: train (or resume) into work_dirs/demo/<its name>
  "$py" tools/train.py "$1" --work-dir "$work/$(basename "$1" .py)" --resume
}
last() { cat "$work/$1/last_checkpoint"; }
evaluate() {  # CONFIG CHECKPOINT LABEL: tools/test.py, its output kept in LABEL.txt
  "$py" tools/test.py "$1" "$2" --work-dir "$work/test_$3" | tee "$work/$3.txt"
}
metric() { sed -n "s/^dota\/$1: //p" "$work/$2.txt"; }

train configs/kd-rnet/demo/$teacher.py
train configs/kd-rnet/demo/$student.py
train configs/kd-rnet/demo/$kd_rnet.py
train configs/dked/demo/$dked.py
for run in $kd_rnet $dked; do
  "$py" tools/export_student.py "$(last $run)" "$work/$run/student.pth"
done

evaluate configs/kd-rnet/demo/$teacher.py "$(last $teacher)" rotated_teacher_r50
evaluate configs/kd-rnet/demo/$student.py "$(last $student)" rotated_student_r18
evaluate configs/kd-rnet/demo/$student.py "$work/$kd_rnet/student.pth" kd-rnet_student_r18
evaluate configs/kd-rnet/demo/$student.py "$work/$dked/student.pth" dked_student_r18

echo
echo "Rotated demo on synthetic DOTA (val, patches merged per image, DOTA VOC07 mAP, tools/test.py)"
printf '%-24s %9s %9s\n' model mAP AP50
for label in rotated_teacher_r50 rotated_student_r18 kd-rnet_student_r18 dked_student_r18; do
  printf '%-24s %9.3f %9.3f\n' "$label" "$(metric mAP "$label")" "$(metric AP50 "$label")"
done
