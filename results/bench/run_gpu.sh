#!/usr/bin/env bash
# Issue 7's GPU benchmarks, each a side-by-side run of `memjax bench` at the issue's anchor
# shapes, written as NAME.json and NAME.md into OUT/bench.tar. Run from the repository root on a
# machine with an NVIDIA GPU, jax[cuda] and (for the baselines) torch:
#
#   results/bench/run_gpu.sh OUT
#
# If a folder `wheels/` holds grain / ml_collections / tensorflow-datasets wheels (see
# results/bench/README.md), they are installed into /tmp/site first. The benches run in order
# of priority and each writes its files as it finishes, so a run cut short by a time limit
# keeps the finished ones; ANCHOR_ONLY=1 runs the first two alone (the LSTM/GRU and
# linear-cell anchors, about 6 minutes on an H200 by estimate, compiles included).
set -euo pipefail
out=${1:?usage: results/bench/run_gpu.sh OUT}
mkdir -p "$out"
if compgen -G "wheels/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --target /tmp/site wheels/*.whl
  export PYTHONPATH=/tmp/site:.
else
  export PYTHONPATH=.
fi
export PYTHONUNBUFFERED=1

# Each bench's NAME.json and NAME.md are appended to OUT/bench.tar as soon as it finishes (one
# file, since a device call returns at most 8); OUT/log.md collects everything printed.
work=$(mktemp -d)
bench() {
  local name=$1
  shift
  echo "== $name: $*" | tee -a "$out/log.md"
  python3 -m memjax.bench "$@" --json "$work/$name.json" | tee "$work/$name.md" | tee -a "$out/log.md"
  tar -rf "$out/bench.tar" -C "$work" "$name.json" "$name.md"
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee -a "$out/log.md"

# LSTM and GRU, B=64, T=1024, width 256, fp32: unroll factors beside flax, cuDNN (JAX, torch).
bench h200-lstm-gru-b64-t1024-d256 --mixers "lstm;lstm:bptt=False;gru" --batch 64 \
  --lengths 1024 --width 256 --unroll 1,8,32 --repeats 10 \
  --baselines "flax OptimizedLSTMCell,flax LSTMCell,jax cuDNN LSTM,torch LSTM,torch GRU"

# Diagonal linear cells, B=64, T=1024, width 256: every scan form side by side.
bench h200-linear-b64-t1024-d256 --mixers "lru;s5;mingru;minlstm" --batch 64 --lengths 1024 \
  --width 256 --mode sequential,parallel,pallas --repeats 10 --no-baselines
[[ "${ANCHOR_ONLY:-0}" == 1 ]] && exit 0

# The same at B=4, T=16384 (the sequential scan is left out: about 0.35 s a call).
bench h200-linear-b4-t16384-d256 --mixers "lru;s5;mingru;minlstm" --batch 4 --lengths 16384 \
  --width 256 --mode parallel,pallas --repeats 10 --no-baselines

# Linear attention: chunked against the sequential scan, B=16, T=4096.
bench h200-linear-attention-b16-t4096-d256 --mixers "linear_attention;linear_attention:decay=gated" \
  --batch 16 --lengths 4096 --width 256 --mode sequential,chunked --repeats 10 --no-baselines

# Attention in float32 (no cuDNN): XLA's path against the blocked kernel, B=8, T=4096.
bench h200-attention-fp32-b8-t4096 --batch 8 --lengths 4096 --width 512 --repeats 10 \
  --mixers "attention:heads=8,implementation=xla;attention:heads=8,implementation=blocked" \
  --baselines "torch sdpa"

# Attention, bf16, 8 heads of 64, beside torch SDPA: 1K at B=32, 4K at B=8, 16K at B=2.
for shape in "32 1024" "8 4096" "2 16384"; do
  read -r batch length <<<"$shape"
  bench "h200-attention-bf16-b$batch-t$length" --mixers "attention:heads=8" --batch "$batch" \
    --lengths "$length" --width 512 --dtype bfloat16 --repeats 10 --baselines "torch sdpa"
done
