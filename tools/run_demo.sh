#!/usr/bin/env bash
# The main job on the built-in demo data, from nothing but Python and git:
#   1. set up the environment (tools/setup_env.sh, idempotent),
#   2. write the synthetic ShipRSImageNet-layout data (tools/data/make_synthetic.py),
#   3. train the demo detector (RetinaNet R18) with tools/train.py (resumes if interrupted),
#   4. evaluate the untrained and the trained model with tools/test.py and print both mAPs.
# With --distill it also trains the demo teacher (RetinaNet R50), distils it into the student
# with IFKD, exports the distilled student and prints teacher / student / distilled mAPs.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
distill=0
case "${1:-}" in
  --distill) distill=1 ;;
  "") ;;
  *) echo "usage: $0 [--distill]" >&2; exit 2 ;;
esac
bash "$repo/tools/setup_env.sh"
cd "$repo"
py="${IFKD_MM_VENV:-$repo/.venv}/bin/python"
demo=configs/demo
work=work_dirs/demo

"$py" tools/data/make_synthetic.py --out data/synthetic --datasets shiprs

train() {  # CONFIG_NAME: train (or resume) into work_dirs/demo/CONFIG_NAME
  "$py" tools/train.py "$demo/$1.py" --work-dir "$work/$1" --resume
}
evaluate() {  # CONFIG_NAME CHECKPOINT LABEL: tools/test.py, its output kept in LABEL.txt
  "$py" tools/test.py "$demo/$1.py" ${2:+"$2"} --work-dir "$work/test_$3" | tee "$work/$3.txt"
}
last() { cat "$work/$1/last_checkpoint"; }
metric() { sed -n "s/^coco\/$1: //p" "$work/$2.txt"; }
table() {  # LABEL...: one row of COCO metrics per evaluated model
  echo
  echo "Demo on synthetic ShipRSImageNet (val split, COCO bbox metric, tools/test.py)"
  printf '%-34s %9s %9s %9s\n' model mAP AP50 AP75
  for label in "$@"; do
    printf '%-34s %9s %9s %9s\n' "$label" "$(metric bbox_mAP "$label")" \
      "$(metric bbox_mAP_50 "$label")" "$(metric bbox_mAP_75 "$label")"
  done
}

student=retinanet_r18_fpn_demo_synthetic-shiprs
train "$student"
evaluate "$student" "" untrained_student_r18
evaluate "$student" "$(last "$student")" student_r18
if [[ $distill == 0 ]]; then
  table untrained_student_r18 student_r18
  exit 0
fi

teacher=retinanet_r50_fpn_demo_synthetic-shiprs
distilled=ifkd_retinanet_r50-r18_fpn_demo_synthetic-shiprs
train "$teacher"
evaluate "$teacher" "$(last "$teacher")" teacher_r50
train "$distilled"
"$py" tools/export_student.py "$(last "$distilled")" "$work/$distilled/student.pth"
evaluate "$student" "$work/$distilled/student.pth" ifkd_student_r18
table untrained_student_r18 teacher_r50 student_r18 ifkd_student_r18
