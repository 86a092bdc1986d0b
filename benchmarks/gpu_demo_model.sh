#!/usr/bin/env bash
# `make demo-model-gpu` on a lent GPU (CUDA): the control-site checkpoints of
# demo-model/control/ with recipes/tiny-cpu/demo-model-gpu.yaml, within
# a fixed wall-clock budget (the recipe's minutes per trainer run; MIN_SFT / MIN_GRPO
# override them).
# Prepare here first: run the recipe with `stages: []` (world, base, examples), then
# `python benchmarks/gpu_pack_inputs.py` (-> .devcheck/demo-model), and keep the wheels
# TRL needs in .whl/. Carry .devcheck and .whl. Writes one archive per shipped
# checkpoint, card.json and the logs to $OUT (8 files at most come back).
# PY (default python3) picks the interpreter; SKIP_WHEELS=1 skips the wheel install
# (a dry run on a machine that has the packages).
set -uo pipefail
OUT=${OUT:-/tmp/out}
PY=${PY:-python3}
LIMIT_S=${LIMIT_S:-530}
mkdir -p "$OUT"
if [ "${SKIP_WHEELS:-0}" != 1 ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
fi
export PYTHONPATH=/tmp/site:src PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true
[ -d runs/demo-model ] || { mkdir -p runs && cp -r .devcheck/demo-model runs/demo-model; } || exit 1
$PY - <<'PY' 2>&1 | tee "$OUT/env.txt"
import torch, transformers, trl, datasets, pyarrow, accelerate
dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA"
print("torch", torch.__version__, "cuda", torch.cuda.is_available(), dev)
print("transformers", transformers.__version__, "trl", trl.__version__, "datasets", datasets.__version__,
      "pyarrow", pyarrow.__version__, "accelerate", accelerate.__version__)
PY
args=()
[ -n "${MIN_SFT:-}" ] && args+=(--sft-minutes "$MIN_SFT")
[ -n "${MIN_GRPO:-}" ] && args+=(--grpo-minutes "$MIN_GRPO")
# This run's checkpoints replace the control-site ones (a stage cut short ships nothing stale).
rm -rf demo-model/control
# The limit leaves time to pack what finished: each stage ships as soon as it ends.
timeout "$LIMIT_S" $PY -c "from customer_r1.cli import main; main()" demo \
  --config recipes/tiny-cpu/demo-model-gpu.yaml "${args[@]}" > /tmp/demo-model.raw 2>&1
echo "demo exit: $?" >> /tmp/demo-model.raw
# Progress bars end in \r: split them off so the trainers' metric lines survive the filter.
tr '\r' '\n' < /tmp/demo-model.raw | grep -vE "it/s\]|s/it\]|examples/s\]|^ *$" > "$OUT/demo-model.log"
for d in demo-model/control/*/; do
  n=$(basename "$d")
  [ -f "$d/metrics.json" ] && tar czf "$OUT/demo-model-$n.tgz" -C demo-model/control "$n"
done
cp demo-model/control/card.json "$OUT/" 2>/dev/null
grep -E "✓|train_runtime|demo exit|Error|error" "$OUT/demo-model.log" | tail -40
ls -la "$OUT"
