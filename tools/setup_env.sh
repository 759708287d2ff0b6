#!/usr/bin/env bash
# Create (or update) the project's virtual environment and install the pinned OpenMMLab stack.
#
# Idempotent: a second run with unchanged requirements only checks a stamp and exits in seconds.
# mmcv 2.1.0 has no binary wheel; it is built from source with its ops once (about 25 minutes on
# 2 cores), and the wheel is cached outside the repository, keyed by mmcv, torch and Python
# versions, so later venvs (fresh clones, CI) install it in seconds. See ../shared/docs/STACK.md.
#
# Environment:
#   IFKD_MM_VENV   venv location            (default: <repo>/.venv)
#   IFKD_MM_CACHE  wheel cache location     (default: ${XDG_CACHE_HOME:-~/.cache}/ifkd_mm)
#   PYTHON         interpreter for the venv (default: python3)
#   MAX_JOBS       parallel compile jobs    (default: number of cores)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${IFKD_MM_VENV:-$repo/.venv}"
cache="${IFKD_MM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ifkd_mm}"
python="${PYTHON:-python3}"
mmcv_version=2.1.0
torch_version="$(sed -n 's/^torch==//p' "$repo/requirements/torch.txt")"

log() { printf '[setup_env] %s\n' "$*" >&2; }

stamp_of() {
  cat "$repo"/requirements/*.txt "$repo/setup.py" "$repo/tools/setup_env.sh" | sha256sum | cut -c1-16
}
stamp_file="$venv/.ifkd_mm_stamp"
want_stamp="$(stamp_of)"
if [[ -f "$stamp_file" && "$(cat "$stamp_file")" == "$want_stamp" ]] \
   && "$venv/bin/python" -c 'import mmcv.ops, mmdet, mmrotate, ifkd_mm' 2>/dev/null; then
  log "environment up to date: $venv"
  exit 0
fi

if [[ ! -x "$venv/bin/python" ]]; then
  log "creating venv $venv"
  "$python" -m venv "$venv"
fi
py="$venv/bin/python"
pip=("$py" -m pip install --disable-pip-version-check)

log "installing build tools and torch $torch_version"
"${pip[@]}" -q --upgrade pip
"${pip[@]}" -q -r "$repo/requirements/build.txt" -r "$repo/requirements/torch.txt"

py_tag="$("$py" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
accel=cpu
if [[ "${FORCE_CUDA:-0}" == "1" ]]; then accel="cuda${TORCH_CUDA_ARCH_LIST:-all}"; fi
wheel_dir="$cache/wheels/mmcv-$mmcv_version-torch$torch_version-$py_tag-$accel"
mkdir -p "$wheel_dir"

build_mmcv() {
  local work
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  log "building mmcv $mmcv_version with ops from source (once; ~25 min on 2 cores) in $work"
  "$py" -m pip download -q --no-deps --no-build-isolation --no-binary :all: "mmcv==$mmcv_version" -d "$work"
  tar -xzf "$work/mmcv-$mmcv_version.tar.gz" -C "$work"
  local src="$work/mmcv-$mmcv_version"
  # torch >= 2.6 headers need C++20; mmcv's setup.py passes -std=c++14/17 explicitly.
  sed -i -E 's/-std=c\+\+1[47]/-std=c++20/g' "$src/setup.py"
  grep -q 'c++20' "$src/setup.py" || { log "could not patch the C++ standard in mmcv's setup.py"; exit 1; }
  (cd "$src" && MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
     "$py" -m pip wheel -q --no-build-isolation --no-deps -w "$work/dist" .)
  local built
  built="$(ls "$work"/dist/mmcv-*.whl)"
  mv "$built" "$wheel_dir/"
}

if ! ls "$wheel_dir"/mmcv-*.whl >/dev/null 2>&1; then
  exec 9>"$cache/mmcv-build.lock"
  flock 9
  ls "$wheel_dir"/mmcv-*.whl >/dev/null 2>&1 || build_mmcv
else
  log "reusing cached mmcv wheel from $wheel_dir"
fi

log "installing mmcv, the OpenMMLab stack and test tools"
"${pip[@]}" -q "$(ls "$wheel_dir"/mmcv-*.whl | head -n 1)"
"${pip[@]}" -q -r "$repo/requirements/runtime.txt" -r "$repo/requirements/tests.txt" \
  -r "$repo/requirements/build.txt"
"${pip[@]}" -q --no-deps --no-build-isolation -e "$repo"

"$py" - <<'EOF'
import mmcv.ops  # noqa: F401  fails if the wheel was built without _ext
import mmcv, mmdet, mmengine, mmrotate, mmpretrain, mobile_sam, segment_anything  # noqa: F401
import pkg_resources  # noqa: F401  mmengine 0.10.7 needs it (setuptools < 82)
import ifkd_mm  # noqa: F401
print(f'[setup_env] ok: torch {__import__("torch").__version__}, mmcv {mmcv.__version__} (ops), '
      f'mmdet {mmdet.__version__}, mmrotate {mmrotate.__version__}, mmpretrain {mmpretrain.__version__}')
EOF
echo "$want_stamp" > "$stamp_file"
