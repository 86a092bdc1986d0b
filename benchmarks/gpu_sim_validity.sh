#!/usr/bin/env bash
# Issue 17's validation benchmark on a lent GPU, in one call:
#   1. the world's own shopper (the true answer) on the control site and every built-in
#      variant (CPU, first, so the model runs can share its arms);
#   2. the shipped SFT+GRPO checkpoints with and without persona on every variant (GPU);
#   3. meanwhile, SFT of the mixed-variant model (recipes/tiny-cpu/variant-mix-gpu.yaml: its
#      training sessions on 7 of the 12 sites, 3 minutes like the shipped persona SFT), then it
#      and the shipped persona SFT scored on the 5 variants it never saw;
#   4. the checkpoint's simulation throughput on the GPU (K = 1, 16, 64).
# Run in this session: the first three calls failed on missing wheels and hub kernels, the
# fourth found a warm machine's earlier folders and a CPU starved by the SFT's tokenization,
# and the GPU time ran out (docs/results.md); this is the corrected script, not yet run.
# Prepare here: `customer-r1 demo --config recipes/tiny-cpu/variant-mix-gpu.yaml` (stages: [],
# so world, base and examples only), `python benchmarks/gpu_pack_inputs.py --src
# runs/variant-mix --dest .devcheck/variant-mix`, and the wheels TRL needs in .whl/ (see
# docs/results.md). Carry .devcheck and .whl. Results come back as $OUT/validity.tgz (every
# ab.json/ab.md, manifests and validity.json) and the logs.
set -uo pipefail
OUT=${OUT:-/tmp/out}
PY=${PY:-python3}
SPU=${SPU:-2}          # sessions per shopper and arm (80 shoppers)
SFT_MIN=${SFT_MIN:-2.5} # minutes of SFT for the mixed-variant model
TSPU=${TSPU:-6}        # sessions per shopper of the true arms
K=${K:-64}             # sessions in flight per model run
DEV=${DEV:-cuda}       # cuda here; cpu for a dry run of the plumbing
MAXU=${MAXU:-80}       # shoppers
mkdir -p "$OUT"
if [ "${SKIP_WHEELS:-0}" != 1 ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
fi
# USE_HUB_KERNELS=0: transformers would fetch hub kernels for CUDA, which offline fails.
export DEV
export PYTHONPATH=/tmp/site:src PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true HF_HUB_OFFLINE=1 USE_HUB_KERNELS=0
T0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - T0 )) s] $*" | tee -a "$OUT/timeline.log"; }
rm -rf runs && mkdir -p runs && cp -r .devcheck/variant-mix runs/variant-mix
V=runs/validity
mkdir -p "$V/world/world"
# The demo's world (80 shoppers, compact pages, seed 0): a simulation needs its config only.
$PY - <<'PY'
import json
from dataclasses import asdict
from customer_r1.world import WorldConfig
cfg = WorldConfig(users=80, sessions_per_user=20, seed=0, page_size="compact")
open("runs/validity/world/world/world.json", "w").write(json.dumps({"format": 1, "config": asdict(cfg)}))
import torch
print("torch", torch.__version__, "cuda", torch.cuda.is_available())
PY
ALL=${ALL:-reviews_hidden,ratings_hidden,price_up_10,price_down_10,sort_by_price,results_halved,results_doubled,no_brand_filters,no_deals,no_related_searches,add_to_cart_below}
HELD=${HELD:-ratings_hidden,price_down_10,results_halved,no_brand_filters,add_to_cart_below}
COMMON=(--world "$V/world" --max-users "$MAXU" --sessions-per-user "$SPU" --true-sessions-per-user "$TSPU" --boot 1000)

stamp "SFT of the mixed-variant model starts (GPU)"
[ "${SKIP_SFT:-0}" = 1 ] || ( timeout 240 $PY -c "from customer_r1.cli import main; main()" demo \
    --config recipes/tiny-cpu/variant-mix-gpu.yaml --stage train --sft-minutes "$SFT_MIN" > "$OUT/mix-sft.raw" 2>&1;
  echo "exit $?" >> "$OUT/mix-sft.raw" ) &
SFT=$!

stamp "throughput on the GPU (K = 1, 16, 64), beside the CPU work below"
[ "${SKIP_TP:-0}" = 1 ] || ( timeout 100 $PY - <<'PY' > "$OUT/throughput.log" 2>&1
import os
import torch
from customer_r1.sim.simulate import simulate
for k in (1, 16, 64):
    m = simulate(world="runs/validity/world", out=f"runs/tp-k{k}", model="demo-model/real-grpo",
                 max_users=64 if k > 1 else 8, sessions_per_user=1, seed=0, concurrency=k,
                 progress=False, device=os.environ.get("DEV", "cuda"))
    c = m["counts"]
    print(f"K={k}: {c['sessions']} sessions, {c['steps']} steps in {m['timing']['seconds']:.1f} s "
          f"= {c['steps'] / m['timing']['seconds']:.1f} steps/s", flush=True)
PY
) &
TP=$!

stamp "true arms (the world's shopper), every variant (CPU)"
timeout 200 $PY benchmarks/sim_ab_validity.py --out "$V/truth" --policies "" --variants "$ALL" \
  "${COMMON[@]}" --concurrency 16 > "$OUT/true.log" 2>&1
# Every policy reuses the true arms from there (a finished run folder is read, never rewritten).
for d in shipped none mix; do mkdir -p "$V/$d" && ln -sfn "$PWD/$V/truth/true" "$V/$d/true"; done
stamp "true arms done"
wait $TP
stamp "throughput done"; cat "$OUT/throughput.log"

stamp "shipped checkpoints on every variant (GPU)"
( timeout 250 $PY benchmarks/sim_ab_validity.py --out "$V/shipped" --policies shipped --variants "$ALL" \
    "${COMMON[@]}" --concurrency "$K" --device "$DEV" > "$OUT/shipped.log" 2>&1; echo "exit $?" >> "$OUT/shipped.log" ) &
P1=$!
( timeout 250 $PY benchmarks/sim_ab_validity.py --out "$V/none" --policies none --variants "$ALL" \
    "${COMMON[@]}" --concurrency "$K" --device "$DEV" > "$OUT/none.log" 2>&1; echo "exit $?" >> "$OUT/none.log" ) &
P2=$!
wait $SFT
stamp "mixed-variant SFT done: $(tail -c 300 "$OUT/mix-sft.raw" | tr '\r' '\n' | tail -2 | tr '\n' ' ')"
MIX=${MIX:-runs/variant-mix/models/real/sft}
if [ -f "$MIX/metrics.json" ]; then
  ( timeout 120 $PY benchmarks/sim_ab_validity.py --out "$V/mix" --policies "" --extra "mix_sft=$MIX" \
      --extra "shipped_sft=demo-model/control/real-sft" --variants "$HELD" --heldout "$HELD" \
      "${COMMON[@]}" --concurrency "$K" --device "$DEV" > "$OUT/mix.log" 2>&1; echo "exit $?" >> "$OUT/mix.log" ) &
  P3=$!
fi
wait $P1 $P2
stamp "shipped runs done"
[ -n "${P3:-}" ] && wait $P3
stamp "mixed-variant runs done"
tr '\r' '\n' < "$OUT/mix-sft.raw" | grep -vE "it/s\]|s/it\]|examples/s\]|^ *$" > "$OUT/mix-sft.log"
rm -f "$OUT/mix-sft.raw"
( cd runs && find validity variant-mix/models -name "ab.json" -o -name "ab.md" -o -name "manifest.json" \
    -o -name "validity.json" -o -name "metrics.json" -o -name "card.json" | tar czf "$OUT/validity.tgz" -T - )
stamp "packed"
grep -hE "^== |sign agreement|Spearman|per-user|held-out" "$OUT"/shipped.log "$OUT"/none.log "$OUT"/mix.log 2>/dev/null
ls -la "$OUT"
