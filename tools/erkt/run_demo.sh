#!/usr/bin/env bash
# ERKT-Net end to end on synthetic NWPU-RESISC45-layout class folders (CPU, about 10-20 minutes
# on 2 cores), every step through the project's tools:
#   1. write the synthetic folders (tools/data/make_synthetic.py, 5 classes x 40 images, 64 px),
#   2. train the three teacher members (EfficientNet-B0, EfficientNet-B3, ResNet-50, from scratch)
#      with tools/train.py and test each with tools/test.py,
#   3. test the 0.3 / 0.4 / 0.3 ensemble with tools/test.py and run the eq. 14 weight search,
#   4. distil the ensemble into EfficientNet-B0 with the VSM and CutMix + DIST (ERKT-Net),
#   5. test the student (overall accuracy, <work_dir>/test/confusion_matrix.png), draw its
#      Grad-CAM and t-SNE figures and the parameter / FLOP / time table (Table 8, 64 px).
# Each stage prints one line; its full output goes to <work-dir>/logs/. Interrupted runs resume;
# finished trainings are not repeated. The table is also written as <work-dir>/results.{md,json}.
# The baseline (student without
# distillation, usual augmentation) is the EfficientNet-B0 teacher's recipe.
#
#   bash tools/erkt/run_demo.sh [--seed N] [--work-dir DIR]
#
# --seed (default 0) is the training seed of every model (randomness.seed; the synthetic data and
# its train / test split stay the same); each seed has its own work dir, by default
# work_dirs/erkt-net/demo/seed_N, so runs with different seeds never reuse each other's models.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
# shellcheck source=lib/stages.sh
source tools/lib/stages.sh
parse_seed_args work_dirs/erkt-net/demo "$@"
demo=configs/erkt-net/demo
epochs=30
teachers=(efficientnet-b0 efficientnet-b3 resnet50)
logs="$work/logs"
stages=15

echo "ERKT-Net demo: B0 / B3 / R50 ensemble -> EfficientNet-B0 on synthetic NWPU-RESISC45," \
  "seed $seed (logs: $logs)"
setup_stage
stage "write the synthetic NWPU-RESISC45 folders" make_synthetic -- \
  "$py" tools/data/make_synthetic.py --out data/synthetic_erkt --datasets nwpu45 --per-class 40 \
  --scene-img-size 64

oa='OA=^accuracy/top1: ([0-9.]+)'
members=()  # the trained teachers as --cfg-options of the ensemble configs (members 0 / 1 / 2)
for k in "${!teachers[@]}"; do
  name="${teachers[$k]}"
  config="$demo/${name}_demo_synthetic-nwpu45.py"
  dir="$work/${name}_demo_synthetic-nwpu45"
  stage "train the teacher member $name" "train_$name" -- \
    "$py" tools/train.py "$config" --work-dir "$dir" --resume --cfg-options randomness.seed="$seed"
  stage "test $name" "test_$name" --result "$oa" -- \
    "$py" tools/test.py "$config" "$dir/epoch_$epochs.pth" --work-dir "$dir/test"
  members+=("model.members.$k.checkpoint=$dir/epoch_$epochs.pth")
done
teacher_members=("${members[@]/#model./model.teacher.}")

ensemble="$demo/ensemble_b0-b3-r50_demo_synthetic-nwpu45.py"
ensemble_dir="$work/ensemble_b0-b3-r50_demo_synthetic-nwpu45"
stage "test the 0.3 / 0.4 / 0.3 ensemble" test_ensemble --result "$oa" -- \
  "$py" tools/test.py "$ensemble" --work-dir "$ensemble_dir" --cfg-options "${members[@]}"
stage "search the ensemble weights (eq. 14)" weight_search -- \
  "$py" tools/erkt/search_weights.py "$ensemble" --cfg-options "${members[@]}"

erkt="$demo/erkt-net_ensemble-b0_demo_synthetic-nwpu45.py"
erkt_dir="$work/erkt-net_ensemble-b0_demo_synthetic-nwpu45"
stage "distil the ensemble into B0 (ERKT-Net)" train_erkt-net -- \
  "$py" tools/train.py "$erkt" --work-dir "$erkt_dir" --resume \
  --cfg-options randomness.seed="$seed" "${teacher_members[@]}"
stage "test the ERKT-Net student" test_erkt-net --result "$oa" -- \
  "$py" tools/test.py "$erkt" "$erkt_dir/epoch_$epochs.pth" --work-dir "$erkt_dir/test" \
  --cfg-options "${teacher_members[@]}"
stage "draw Grad-CAM" gradcam -- "$py" tools/erkt/visualize.py gradcam "$erkt" \
  "$erkt_dir/epoch_$epochs.pth" --out "$erkt_dir/gradcam.png"
stage "draw t-SNE" tsne -- "$py" tools/erkt/visualize.py tsne "$erkt" \
  "$erkt_dir/epoch_$epochs.pth" --out "$erkt_dir/tsne.png"
stage "count parameters, FLOPs and time (Table 8)" complexity -- \
  "$py" tools/erkt/complexity.py "$demo/resnet50_demo_synthetic-nwpu45.py" \
  "$demo/efficientnet-b3_demo_synthetic-nwpu45.py" "$ensemble" "$erkt" --size 64 \
  --num-images 100 --batch-size 10
# the teacher ensemble's top-1 on the augmented (VSM + CutMix) training batches, as logged
teacher_acc="$("$py" - "$erkt_dir" <<'EOF'
import glob, json, sys
rows = [json.loads(line) for path in glob.glob(f'{sys.argv[1]}/*/vis_data/scalars.json')
        for line in open(path)]
values = [row['teacher_acc'] for row in rows if 'teacher_acc' in row]
print(f'{sum(values) / len(values):.1f}' if values else 'n/a')
EOF
)"

rows=()
for name in "${teachers[@]}"; do
  rows+=(--row "teacher $name" "$work/${name}_demo_synthetic-nwpu45/test/metrics.json")
done
echo
title="ERKT-Net demo, synthetic NWPU-RESISC45 (5 classes, train ratio 50%, test split)"
"$py" tools/results_table.py --digits 1 --title "$title, seed $seed" \
  "${rows[@]}" --row "ensemble 0.3/0.4/0.3" "$ensemble_dir/metrics.json" \
  --row "baseline B0 (= teacher B0 recipe)" \
  "$work/efficientnet-b0_demo_synthetic-nwpu45/test/metrics.json" \
  --row "ERKT-Net student B0" "$erkt_dir/test/metrics.json" \
  --metric "OA (%)=accuracy/top1" --md "$work/results.md" --json "$work/results.json"
echo "teacher ensemble top-1 on the augmented training batches (mean of the logged teacher_acc):" \
  "$teacher_acc %"
echo "table: $work/results.md, $work/results.json; logs: $logs/"
echo "figures: $erkt_dir/test/confusion_matrix.png $erkt_dir/gradcam.png $erkt_dir/tsne.png"
echo "complexity table (Table 8): $logs/complexity.log"
