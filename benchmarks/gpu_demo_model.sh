#!/usr/bin/env bash
# `make demo-model` on a lent GPU (CUDA, bf16) with recipes/tiny-cpu/demo-model-gpu.yaml,
# within a fixed wall-clock budget.
# Expects runs/demo-model/{world,base,built} prepared on the CPU (stages: [] of the same
# recipe) and the wheels TRL needs in .whl/. Writes demo-model.tgz and the logs to $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:src PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true
python3 - <<'PY' 2>&1 | tee "$OUT/env.txt"
import torch, transformers, trl, datasets, pyarrow, accelerate
print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0))
print("transformers", transformers.__version__, "trl", trl.__version__, "datasets", datasets.__version__,
      "pyarrow", pyarrow.__version__, "accelerate", accelerate.__version__)
PY
MIN_SFT=${MIN_SFT:-1.6}
MIN_GRPO=${MIN_GRPO:-0.6}
python3 -c "from customer_r1.cli import main; main()" demo --config recipes/tiny-cpu/demo-model-gpu.yaml --sft-minutes "$MIN_SFT" --grpo-minutes "$MIN_GRPO" \
  2>&1 | tee "$OUT/demo-model.log" | grep -vE "it/s\]|s/it\]" &
PID=$!
wait $PID
tar czf "$OUT/demo-model.tgz" demo-model 2>/dev/null
for f in runs/demo-model/models/*/*/metrics.json; do
  m=$(basename $(dirname $(dirname $f))); s=$(basename $(dirname $f)); cp "$f" "$OUT/metrics-$m-$s.json"
done
ls -la "$OUT"
