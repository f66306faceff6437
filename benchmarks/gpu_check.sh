#!/usr/bin/env bash
# The GPU check: hf-tbc's GPU path on one GPU in at most 8 minutes, every line teed into the output folder as it
# goes, so that a run cut off by a time limit leaves everything it measured so far.
#
#   bash benchmarks/gpu_check.sh [OUTPUT_FOLDER]        # default: $OUT, else gpu_check_out
#
# Steps (each under its own `timeout`, cut to what is left of GPU_CHECK_SECONDS, default 480):
#   1. the hardware, and torch's bf16 matmul at 8192^3 against the datasheet peak;
#   2. run_mlm.py at L12-H768 for 2 minutes (bf16, batch 128 x 128): tokens/s and MFU against the GPU's bf16 peak;
#   3. run_translation.py for 1 minute;
#   4. the tiny study (every stage, the advisor first);
#   5. SIGTERM to a run_mlm.py run while it trains, then --resume_from_checkpoint true to the end of its budget;
#   6. FSDP2 through accelerate's flags for 30 s, where time is left (on CPUs accelerate ignores --use_fsdp).
# The machine needs torch, transformers, accelerate, datasets and the other dependencies; where one is missing and
# a folder .whl of wheels is in the repo, they are installed from it into /tmp/site first (no network needed).
set -u
OUT_DIR=${1:-${OUT:-gpu_check_out}}
mkdir -p "$OUT_DIR"
LOG="$OUT_DIR/gpu_check.log"
exec > >(tee -a "$LOG") 2>&1
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export HF_TBC_CACHE="$OUT_DIR/.cache" PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PYTHON=${PYTHON:-python3}
START=$(date +%s)
LIMIT=${GPU_CHECK_SECONDS:-480}
step() { echo; echo "== [$(( $(date +%s) - START )) s] $*"; }
# a step's timeout: its own, or what is left of the whole check's LIMIT when that is less
within() { local left=$(( LIMIT - ($(date +%s) - START) )); [ "$left" -lt "$1" ] && echo $(( left > 5 ? left : 5 )) || echo "$1"; }

if [ -d .whl ]; then
  step "installing the wheels in .whl"
  $PYTHON -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi

step "1. hardware"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv || true
timeout $(within 45) $PYTHON - <<'EOF'
import time, torch, transformers, accelerate
from hf_tbc.hardware import gpu_bf16_peak
name = torch.cuda.get_device_name()
print(f"{name}; torch {torch.__version__}, transformers {transformers.__version__}, accelerate {accelerate.__version__}")
a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
for _ in range(3):
    a @ b
torch.cuda.synchronize()
start = time.perf_counter()
for _ in range(10):
    a @ b
torch.cuda.synchronize()
achieved = 10 * 2 * 8192**3 / (time.perf_counter() - start)
peak = gpu_bf16_peak(name)
print(f"bf16 matmul 8192^3: {achieved / 1e12:.0f} TFLOP/s" + (f", {achieved / peak:.0%} of the datasheet's {peak / 1e12:.0f}" if peak else ""))
EOF

step "2. run_mlm.py, L12-H768, 2 minutes"
timeout $(within 210) $PYTHON -m hf_tbc.launch --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no \
  recipes/run_mlm.py --model_size L12-H768 --time_budget 2m --per_device_train_batch_size 128 \
  --output_dir "$OUT_DIR/mlm-L12-H768" --overwrite_output_dir --disable_tqdm true --logging_steps 50 --save_strategy no
echo "exit $?"
$PYTHON - "$OUT_DIR/mlm-L12-H768/run_summary.json" <<'EOF' || true
import json, sys
s = json.load(open(sys.argv[1]))
print({k: s.get(k) for k in ("model_size", "steps", "tokens", "train_tokens_per_s", "achieved_flops_per_s", "mfu",
                              "final_eval_loss", "unigram_loss", "precision", "attn_implementation")})
EOF

step "3. run_translation.py, 1 minute"
timeout $(within 110) $PYTHON -m hf_tbc.launch --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no \
  recipes/run_translation.py --time_budget 1m --output_dir "$OUT_DIR/translation" --overwrite_output_dir \
  --disable_tqdm true --save_strategy no
echo "exit $?"
$PYTHON -c "import json,sys; s=json.load(open(sys.argv[1])); print({k: s.get(k) for k in ('model_size','steps','train_tokens_per_s','final_eval_loss','eval_bleu','bleu')})" \
  "$OUT_DIR/translation/run_summary.json" || true

step "4. the tiny study"
timeout $(within 100) $PYTHON recipes/study.py --config tiny --output_dir "$OUT_DIR/study"
echo "exit $?"

step "5. SIGTERM while training, then the resume"
RUN="$OUT_DIR/sigterm"
$PYTHON -m hf_tbc.launch --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no \
  recipes/run_mlm.py --model_size L4-H256 --time_budget 30s --save_every 5s --output_dir "$RUN" \
  --overwrite_output_dir --disable_tqdm true &
PID=$!
for _ in $(seq 120); do [ -s "$RUN/curve.jsonl" ] && break; sleep 0.5; done
sleep 10
kill -TERM $PID
wait $PID
echo "exit after SIGTERM: $? (143: preempted, checkpoint written)"
$PYTHON -c "import json,sys; s=json.load(open(sys.argv[1])); print({k: s.get(k) for k in ('stop_reason','steps','checkpoint')})" "$RUN/run_summary.json" || true
timeout $(within 90) $PYTHON -m hf_tbc.launch --num_processes 1 --num_machines 1 --mixed_precision no \
  --dynamo_backend no recipes/run_mlm.py --model_size L4-H256 --time_budget 30s --save_every 5s --output_dir "$RUN" \
  --disable_tqdm true --resume_from_checkpoint true
echo "exit of the resume: $?"
$PYTHON -c "import json,sys; s=json.load(open(sys.argv[1])); print({k: s.get(k) for k in ('stop_reason','steps','train_s','resumed_from','final_eval_loss')})" "$RUN/run_summary.json" || true

step "6. FSDP2 through accelerate (one process), 30 s"
# on CPUs accelerate leaves --use_fsdp out silently (the run trains under DDP), so FSDP is checked here
timeout $(within 90) $PYTHON -m accelerate.commands.launch --use_fsdp --fsdp_version 2 --num_processes 1 \
  --num_machines 1 --mixed_precision no --dynamo_backend no recipes/run_mlm.py --model_size L4-H256 \
  --time_budget 30s --output_dir "$OUT_DIR/fsdp" --overwrite_output_dir --disable_tqdm true --save_strategy no
echo "exit $?"
$PYTHON -c "import json,sys; s=json.load(open(sys.argv[1])); print({k: s.get(k) for k in ('fsdp','world_size','stop_step_per_rank','stop_reason','steps','final_eval_loss')})" "$OUT_DIR/fsdp/run_summary.json" || true

step "done in $(( $(date +%s) - START )) s"
