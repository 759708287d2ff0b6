# Shared by the demo scripts (source it after setting $repo and $logs): one line per stage.
#   setup_stage           tools/setup_env.sh into $logs/setup_env.log; sets $py
#   stage LABEL NAME [--result NAME=REGEX ...] -- COMMAND ...
#                         tools/run_stage.py: COMMAND's output into $logs/NAME.log, one line
#   parse_seed_args DEFAULT_WORK_PREFIX "$@"
#                         --seed N (default 0) and --work-dir DIR (default PREFIX/seed_N): sets
#                         $seed and $work
# Stages are numbered [n/$stages] ($stages: set by the caller).
stage_number=0

parse_seed_args() {
  local prefix="$1"
  shift
  seed=0
  work=
  while [ $# -gt 0 ]; do
    case "$1" in
      --seed) seed="$2"; shift 2 ;;
      --work-dir) work="$2"; shift 2 ;;
      *) echo "usage: $0 [--seed N] [--work-dir DIR]" >&2; exit 2 ;;
    esac
  done
  work="${work:-$prefix/seed_$seed}"
}

setup_stage() {
  stage_number=$((stage_number + 1))
  mkdir -p "$logs"
  local log="$logs/setup_env.log"
  if ! bash "$repo/tools/setup_env.sh" > "$log" 2>&1; then
    echo "[$stage_number/$stages] set up the environment: FAILED; last lines of $log:"
    tail -n 30 "$log" | sed 's/^/    /'
    echo "full log: $log"
    exit 1
  fi
  py="${IFKD_MM_VENV:-$repo/.venv}/bin/python"
  local prefix
  prefix="$("$py" -c 'import sys; print(sys.prefix)')"
  echo "[$stage_number/$stages] set up the environment: done ($prefix)"
}

stage() {
  local label="$1" log="$logs/$2.log"
  shift 2
  stage_number=$((stage_number + 1))
  "$py" "$repo/tools/run_stage.py" --step "$stage_number/$stages" --label "$label" --log "$log" "$@"
}
