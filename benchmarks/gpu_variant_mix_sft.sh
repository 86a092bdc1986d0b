#!/usr/bin/env bash
# The mixed-variant SFT of benchmarks/gpu_sim_validity.sh alone, its checkpoint brought back
# (the scoring runs on CPU: on the GPU the tiny model's sampled decoding ran no faster), then
# the 7B-shaped step timing of issue 19. Inputs as in gpu_sim_validity.sh (carry .devcheck, .whl).
set -uo pipefail
OUT=${OUT:-/tmp/out}
PY=${PY:-python3}
mkdir -p "$OUT"
$PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:src PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true HF_HUB_OFFLINE=1 USE_HUB_KERNELS=0
rm -rf runs && mkdir -p runs && cp -r .devcheck/variant-mix runs/variant-mix
timeout 250 $PY -c "from customer_r1.cli import main; main()" demo \
  --config recipes/tiny-cpu/variant-mix-gpu.yaml --stage train --sft-minutes "${SFT_MIN:-2.5}" > "$OUT/mix-sft.raw" 2>&1
echo "exit $?" >> "$OUT/mix-sft.raw"
tr '\r' '\n' < "$OUT/mix-sft.raw" | grep -vE "it/s\]|s/it\]|examples/s\]|^ *$" > "$OUT/mix-sft.log"; rm -f "$OUT/mix-sft.raw"
tail -3 "$OUT/mix-sft.log"
(cd runs/variant-mix/models/real && tar czf "$OUT/mix-sft.tgz" sft)
timeout "${T7B:-170}" $PY benchmarks/gpu_7b_step.py --json "$OUT/step7b.json" 2>&1 | tee "$OUT/step7b.log"
ls -la "$OUT"
