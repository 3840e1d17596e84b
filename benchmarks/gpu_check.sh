#!/usr/bin/env bash
# The GPU check: run on a machine with a CUDA GPU, from the repository root, in under 8 minutes.
#   1. the tests marked `cuda` (fp32 / bf16 / fp16 training iterations, save-resume, inference fast path);
#   2. paper-width cifar10-autogan32 training on Fashion-MNIST x3 channels, 1.5 minutes per precision;
# results: benchmarks/results/gpu.json and benchmarks/results/gpu_tests.txt (copied to $OUT when set).
# Fashion-MNIST: Debian's dataset-fashion-mnist, or DCVAE_FASHION_MNIST=folder with the four IDX .gz files.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
DATA_ROOT="${DCVAE_FASHION_MNIST:-}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
mkdir -p benchmarks/results
timeout 240 python3 -m pytest -q -m cuda tests/test_cuda.py -p no:cacheprovider 2>&1 | tee benchmarks/results/gpu_tests.txt
tests_rc=${PIPESTATUS[0]}
timeout 300 python3 -m benchmarks.gpu_train --minutes 1.5 ${DATA_ROOT:+--data-root "$DATA_ROOT"}
train_rc=$?
if [ -n "${OUT:-}" ]; then cp benchmarks/results/gpu.json benchmarks/results/gpu_tests.txt "$OUT"/ 2>/dev/null; fi
echo "cuda tests exit $tests_rc, gpu training exit $train_rc"
exit $(( tests_rc || train_rc ))
