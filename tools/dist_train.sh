#!/usr/bin/env bash
# Distributed training through torchrun: tools/dist_train.sh CONFIG GPUS [train.py options...]
# NNODES, NODE_RANK, MASTER_ADDR and PORT select a multi-node run, as in mmdetection.
set -euo pipefail
CONFIG=$1
GPUS=$2
shift 2
PYTHONPATH="$(dirname "$0")/..:${PYTHONPATH:-}" \
exec "${PYTHON:-python}" -m torch.distributed.run \
  --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
  --nproc_per_node="$GPUS" --master_port="${PORT:-29500}" \
  "$(dirname "$0")/train.py" "$CONFIG" --launcher pytorch "$@"
