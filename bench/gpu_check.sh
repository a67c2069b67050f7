#!/usr/bin/env bash
# The one prepared GPU check of the CUDA back end (issue 8): builds the extension, checks it against the
# CPU back end, benchmarks it against torch-dwn's algorithm, trains one epoch; prints ONE JSON object
# (the last line of stdout; also $OUT/gpu_check.json when OUT is set). Progress goes to stderr.
#
#   bash bench/gpu_check.sh                 # on the GPU machine, from anywhere
#   bash bench/gpu_check.sh --dry-run       # the same code on the CPU at small sizes
#
# Uses that machine's python3 (PYTHON=... to choose another), installs nothing, needs no network, reads
# only the repository, and stops after GPU_CHECK_TIMEOUT seconds (default 500) including the build; a
# stopped or crashed run still prints one JSON object with what the finished sections recorded.
set -u
cd "$(dirname "$0")/.." || exit 1
PY="${PYTHON:-python3}"
LIMIT="${GPU_CHECK_TIMEOUT:-500}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
export PYTHONDONTWRITEBYTECODE=1
PARTIAL="$(mktemp "${TMPDIR:-/tmp}/gpu_check.XXXXXX")"
export GPU_CHECK_PARTIAL="$PARTIAL"

if command -v nvidia-smi >/dev/null 2>&1; then
  timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >&2
fi
if command -v nvcc >/dev/null 2>&1; then
  nvcc --version 2>&1 | tail -n 1 >&2
else
  echo "gpu_check: nvcc is not on PATH; the extension build will fail unless CUDA_HOME points at a toolkit" >&2
fi

timeout -k 10 "$LIMIT" "$PY" bench/gpu_check.py "$@"
rc=$?
if [ "$rc" -ne 0 ]; then
  # the Python run died or was stopped: print what its sections recorded, marked incomplete
  "$PY" - "$PARTIAL" "$rc" "$LIMIT" <<'PYEOF' || echo "{\"complete\":false,\"errors\":[{\"section\":\"run\",\"error\":\"gpu_check.py exited with status $rc\"}]}"
import json, os, sys
path, rc, limit = sys.argv[1], int(sys.argv[2]), sys.argv[3]
try:
    with open(path) as fh:
        result = json.load(fh)
except Exception:
    result = {"check": "dwn_hw CUDA back end (issue 8)", "errors": []}
why = f"stopped by timeout after {limit} s" if rc in (124, 137) else f"gpu_check.py exited with status {rc}"
result.setdefault("errors", []).append({"section": "run", "error": why})
result["complete"] = False
text = json.dumps(result, separators=(",", ":"))
if os.environ.get("OUT"):
    with open(os.path.join(os.environ["OUT"], "gpu_check.json"), "w") as fh:
        fh.write(text + "\n")
print(text)
PYEOF
fi
rm -f "$PARTIAL"
exit "$rc"
