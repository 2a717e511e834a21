#!/usr/bin/env bash
# One short check on a machine with an NVIDIA GPU: install the project, run the test suite's
# gpu-marked tests (every method trained on the GPU in full and mixed precision, GPU = CPU
# results, CUDA encoders and augmentations) and the throughput benchmark on the GPU, which
# prints samples/s per method. About 5 minutes on an H100.
#
#     bash benchmarks/gpu_check.sh            # PYTHON=python3.11 to choose the interpreter
set -euo pipefail
cd "$(dirname "$0")/.."

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
VENV=${VENV:-.venv-gpu}
if [ ! -x "$VENV/bin/python" ]; then
  # System site packages: a CUDA build of torch installed on the machine is used as it is.
  "${PYTHON:-python3}" -m venv --system-site-packages "$VENV"
fi
"$VENV/bin/python" -m pip install -q -e '.[dev]'
"$VENV/bin/python" - <<'PY'
import torch
assert torch.cuda.is_available(), f"torch {torch.__version__} sees no CUDA device"
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name()}")
PY

echo "== gpu-marked tests"
"$VENV/bin/python" -m pytest -q -m gpu -p no:cacheprovider

echo "== throughput on the GPU"
"$VENV/bin/python" benchmarks/throughput.py --accelerator gpu --n 20000 --epochs 3 --batch 1024
"$VENV/bin/python" benchmarks/throughput.py --accelerator gpu --n 20000 --epochs 3 --batch 1024 \
  --precision bf16-mixed
