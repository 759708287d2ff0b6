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
# Interrupted runs resume; finished steps are skipped. The baseline (student without
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
py="${IFKD_MM_VENV:-$repo/.venv}/bin/python"
seed=0
work=
while [ $# -gt 0 ]; do
  case "$1" in
    --seed) seed="$2"; shift 2 ;;
    --work-dir) work="$2"; shift 2 ;;
    *) echo "usage: $0 [--seed N] [--work-dir DIR]" >&2; exit 2 ;;
  esac
done
work="${work:-work_dirs/erkt-net/demo/seed_$seed}"
demo=configs/erkt-net/demo
epochs=30
teachers=(efficientnet-b0 efficientnet-b3 resnet50)
mkdir -p "$work"

"$py" tools/data/make_synthetic.py --out data/synthetic_erkt --datasets nwpu45 --per-class 40 \
  --scene-img-size 64

oa() { sed -n 's/^accuracy\/top1: //p' "$1"; }
members=()  # the trained teachers as --cfg-options of the ensemble configs (members 0 / 1 / 2)
for k in "${!teachers[@]}"; do
  name="${teachers[$k]}"
  config="$demo/${name}_demo_synthetic-nwpu45.py"
  dir="$work/${name}_demo_synthetic-nwpu45"
  "$py" tools/train.py "$config" --work-dir "$dir" --resume --cfg-options randomness.seed="$seed"
  "$py" tools/test.py "$config" "$dir/epoch_$epochs.pth" --work-dir "$dir/test" \
    | tee "$work/$name.txt"
  members+=("model.members.$k.checkpoint=$dir/epoch_$epochs.pth")
done
teacher_members=("${members[@]/#model./model.teacher.}")

ensemble="$demo/ensemble_b0-b3-r50_demo_synthetic-nwpu45.py"
"$py" tools/test.py "$ensemble" --work-dir "$work/ensemble_b0-b3-r50_demo_synthetic-nwpu45" \
  --cfg-options "${members[@]}" | tee "$work/ensemble.txt"
"$py" tools/erkt/search_weights.py "$ensemble" --cfg-options "${members[@]}" \
  | tee "$work/weight_search.txt"

erkt="$demo/erkt-net_ensemble-b0_demo_synthetic-nwpu45.py"
erkt_dir="$work/erkt-net_ensemble-b0_demo_synthetic-nwpu45"
"$py" tools/train.py "$erkt" --work-dir "$erkt_dir" --resume \
  --cfg-options randomness.seed="$seed" "${teacher_members[@]}"
"$py" tools/test.py "$erkt" "$erkt_dir/epoch_$epochs.pth" --work-dir "$erkt_dir/test" \
  --cfg-options "${teacher_members[@]}" | tee "$work/erkt-net.txt"
"$py" tools/erkt/visualize.py gradcam "$erkt" "$erkt_dir/epoch_$epochs.pth" \
  --out "$erkt_dir/gradcam.png"
"$py" tools/erkt/visualize.py tsne "$erkt" "$erkt_dir/epoch_$epochs.pth" \
  --out "$erkt_dir/tsne.png"
"$py" tools/erkt/complexity.py "$demo/resnet50_demo_synthetic-nwpu45.py" \
  "$demo/efficientnet-b3_demo_synthetic-nwpu45.py" "$ensemble" "$erkt" --size 64 \
  --num-images 100 --batch-size 10 | tee "$work/complexity.txt"
# the teacher ensemble's top-1 on the augmented (VSM + CutMix) training batches, as logged
teacher_acc="$("$py" - "$erkt_dir" <<'EOF'
import glob, json, sys
rows = [json.loads(line) for path in glob.glob(f'{sys.argv[1]}/*/vis_data/scalars.json')
        for line in open(path)]
values = [row['teacher_acc'] for row in rows if 'teacher_acc' in row]
print(f'{sum(values) / len(values):.1f}' if values else 'n/a')
EOF
)"

echo
echo "ERKT-Net demo on synthetic NWPU-RESISC45 (5 classes, train ratio 50%, test split), seed $seed"
printf '%-34s %8s\n' model 'OA (%)'
for name in "${teachers[@]}"; do
  printf '%-34s %8s\n' "teacher $name" "$(oa "$work/$name.txt")"
done
printf '%-34s %8s\n' 'ensemble 0.3/0.4/0.3' "$(oa "$work/ensemble.txt")"
printf '%-34s %8s\n' 'baseline B0 (= teacher B0 recipe)' "$(oa "$work/efficientnet-b0.txt")"
printf '%-34s %8s\n' 'ERKT-Net student B0' "$(oa "$work/erkt-net.txt")"
echo "teacher ensemble top-1 on the augmented training batches (mean of the logged teacher_acc):" \
  "$teacher_acc %"
echo "figures: $erkt_dir/test/confusion_matrix.png $erkt_dir/gradcam.png $erkt_dir/tsne.png"
