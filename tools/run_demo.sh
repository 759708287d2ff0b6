#!/usr/bin/env bash
# The main job on the built-in demo data, from nothing but Python and git:
#   1. set up the environment (tools/setup_env.sh, idempotent),
#   2. write the synthetic ShipRSImageNet-layout data (tools/data/make_synthetic.py),
#   3. train the demo detector with tools/train.py (resumes if interrupted),
#   4. evaluate the untrained and the trained model with tools/test.py and print both mAPs.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$repo/tools/setup_env.sh"
cd "$repo"
py="${IFKD_MM_VENV:-$repo/.venv}/bin/python"
config=configs/demo/retinanet_r18_fpn_demo_synthetic-shiprs.py
work_dir=work_dirs/demo/retinanet_r18_fpn_demo_synthetic-shiprs

"$py" tools/data/make_synthetic.py --out data/synthetic --datasets shiprs
"$py" tools/train.py "$config" --work-dir "$work_dir" --resume
"$py" tools/test.py "$config" --work-dir "$work_dir/test_untrained" | tee "$work_dir/untrained.txt"
"$py" tools/test.py "$config" "$(cat "$work_dir/last_checkpoint")" --work-dir "$work_dir/test_trained" \
  | tee "$work_dir/trained.txt"

metric() { sed -n "s/^coco\/$1: //p" "$2"; }
echo
echo "Demo: RetinaNet ResNet-18 on synthetic ShipRSImageNet (val split, COCO metric)"
printf '%-10s %8s %8s %8s\n' model bbox_mAP mAP_50 mAP_75
for run in untrained trained; do
  printf '%-10s %8s %8s %8s\n' "$run" "$(metric bbox_mAP "$work_dir/$run.txt")" \
    "$(metric bbox_mAP_50 "$work_dir/$run.txt")" "$(metric bbox_mAP_75 "$work_dir/$run.txt")"
done
