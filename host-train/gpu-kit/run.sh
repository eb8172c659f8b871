#!/usr/bin/env bash
# The GPU check kit: proves host-train on a CUDA machine in one run and prints one table.
#
#   ./run.sh          on a GPU machine (CUDA torch in /opt/torch/.venv or $PYTHON)
#   ./run.sh --cpu    the same steps, small, on the CPU (how the kit is tested without a GPU)
#
# The kit's binaries link libtorch dynamically; this script finds it in the Python torch
# package the machine has, which must be the version the kit was built against (kit.env).
# Every step's output goes to results/<step>.log; the table to results/summary.md.
set -uo pipefail

KIT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MODE=cuda
for arg in "$@"; do
    case "$arg" in
        --cpu) MODE=cpu ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown option $arg (--cpu)" >&2; exit 2 ;;
    esac
done
# shellcheck source=/dev/null
source "$KIT/kit.env" # TORCH_VERSION, TCH_VERSION, COMMIT
HOST_TRAIN="$KIT/bin/host-train"
ALEXNET="$KIT/bin/alexnet"
DATA="$KIT/data/fashion-mnist"
RESULTS="${RESULTS:-$KIT/results}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$RESULTS"
rm -f "$RESULTS"/*.log

if [[ -z "${PYTHON:-}" ]]; then
    for p in /opt/torch/.venv/bin/python python3; do
        if command -v "$p" >/dev/null 2>&1; then PYTHON="$p"; break; fi
    done
fi
TORCH_DIR="$("$PYTHON" -c 'import os, torch; print(os.path.dirname(torch.__file__))' 2>/dev/null)" || {
    echo "run.sh: $PYTHON cannot import torch; set PYTHON to a Python with torch $TORCH_VERSION" >&2
    exit 2
}
SITE="$(dirname "$TORCH_DIR")"
export LD_LIBRARY_PATH="$TORCH_DIR/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# NCCL comes with the torch wheel (nvidia-nccl); cudarc loads libnccl.so.2 at run time.
for lib in "$SITE"/nvidia/nccl/lib "$SITE"/nvidia/*/lib; do
    [[ -e "$lib/libnccl.so.2" ]] && export LD_LIBRARY_PATH="$lib:$LD_LIBRARY_PATH" && break
done

if [[ "$MODE" == cuda ]]; then
    DEV=cuda:0 BATCH=128 STEPS=30 THREADS=0 TRAIN_LIMIT=0 RESUME_LIMIT=10000 EVAL_COUNT=5000 MIN_ACC=70
else
    DEV=cpu BATCH=4 STEPS=1 THREADS=2 TRAIN_LIMIT=6000 RESUME_LIMIT=2000 EVAL_COUNT=2000 MIN_ACC=60
fi

ROWS=()
FAILED=0
# row STEP RESULT FIGURE SECONDS
row() { ROWS+=("| $1 | $2 | $3 | $4 |"); [[ "$2" == PASS ]] || FAILED=$((FAILED + 1)); }
# run LOG CMD...: runs CMD with its output in results/LOG.log (appended), at most 10 minutes.
run() {
    local log="$RESULTS/$1.log"; shift
    echo "\$ $*" >>"$log"
    timeout 600 "$@" >>"$log" 2>&1
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
# at_least A B: whether A >= B (decimals)
at_least() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
ips() { grep -o '[0-9.]* images/s' "$1" | tail -1 | cut -d' ' -f1; }

echo "GPU check kit ($COMMIT, tch $TCH_VERSION, torch $TORCH_VERSION), mode $MODE"

# 1. torch version and the GPU.
t=$(now)
if run env "$PYTHON" - "$TORCH_VERSION" "$MODE" <<'PY'
import sys, torch
want, mode = sys.argv[1], sys.argv[2]
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
for i in range(torch.cuda.device_count()):
    print(f"cuda:{i}", torch.cuda.get_device_name(i))
ok = torch.__version__.split("+")[0] == want and (mode == "cpu" or torch.cuda.is_available())
sys.exit(0 if ok else 1)
PY
then
    GPUS=$("$PYTHON" -c 'import torch; print(torch.cuda.device_count())')
    row "1. torch $TORCH_VERSION, GPU" PASS "$(grep -m1 '^cuda:0' "$RESULTS/env.log" || echo "no GPU (--cpu)"); $GPUS GPU(s)" "$(since "$t")"
else
    GPUS=0
    row "1. torch $TORCH_VERSION, GPU" FAIL "$(head -1 "$RESULTS/env.log")" "$(since "$t")"
fi

# 2 and 3. tch against the core; two towers on one device against one tower.
t=$(now)
if run verify "$HOST_TRAIN" verify --arch micro,paper --device "$DEV" --tolerance 1e-4; then r=PASS; else r=FAIL; fi
s=$(since "$t")
fig() { grep -o "$1 [0-9.e-]*" "$RESULTS/verify.log" | awk '{print $NF}' | paste -sd/ -; }
row "2. tch vs core on $DEV (micro/paper, rel. <= 1e-4)" $r "$(fig 'core')" "$s"
row "3. two towers vs one on $DEV (logits; gradients)" $r "$(fig 'logits'); $(fig 'gradients')" "$s"

# 4. Training throughput of the paper net, images/s.
bench() { # NAME CMD...: a throughput row; its images/s in IPS
    local name="$1"; shift
    local t; t=$(now)
    if run bench "$@"; then
        IPS=$(ips "$RESULTS/bench.log")
        row "4. $name" PASS "${IPS} images/s" "$(since "$t")"
    else
        IPS=0
        row "4. $name" FAIL "see bench.log" "$(since "$t")"
    fi
}
B=(--batch-size "$BATCH" --steps "$STEPS" --threads "$THREADS")
bench "paper, two towers on $DEV, batch $BATCH" "$HOST_TRAIN" bench --arch paper --devices "$DEV,$DEV" "${B[@]}"
towers=$IPS
bench "paper, one tower on $DEV" "$HOST_TRAIN" bench --arch paper --devices "$DEV" "${B[@]}"
if [[ "$MODE" == cuda ]]; then
    bench "paper, two towers, --deterministic" "$HOST_TRAIN" bench --arch paper --devices "$DEV,$DEV" "${B[@]}" --deterministic
fi
E=(--device "${DEV%%:*}" --batch "$BATCH" --steps "$STEPS" --threads "$THREADS")
bench "PyTorch eager, same net, f32" "$PYTHON" "$KIT/eager.py" "${E[@]}"
eager=$IPS
if [[ "$MODE" == cuda ]]; then
    bench "PyTorch eager, channels-last" "$PYTHON" "$KIT/eager.py" "${E[@]}" --channels-last
    bench "PyTorch eager, AMP (bf16)" "$PYTHON" "$KIT/eager.py" "${E[@]}" --amp
    bench "PyTorch eager, channels-last + AMP" "$PYTHON" "$KIT/eager.py" "${E[@]}" --channels-last --amp
fi
ratio=$(awk -v a="$towers" -v b="$eager" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }')
if [[ "$MODE" == cuda ]] && ! at_least "$ratio" 1.0; then r=FAIL; else r=PASS; fi
row "4. two towers / PyTorch eager f32 (target >= 1.0 on a GPU)" $r "${ratio}x" "-"

# 5. Data parallelism's reduction through the real initialization.
t=$(now)
if [[ "$MODE" == cuda ]]; then
    id="kit-$$-$(date +%s)"
    if run dist "$HOST_TRAIN" dist-check --device cuda:0 --rendezvous "file://$WORK/nccl-id" --run-id "$id-1"; then
        r=PASS; fig="NCCL world size 1"
    else
        r=FAIL; fig="NCCL world size 1 failed"
    fi
    if [[ "$GPUS" -ge 2 ]]; then
        "$HOST_TRAIN" dist-check --device cuda:1 --rank 1 --world-size 2 --rendezvous "file://$WORK/nccl-id2" --run-id "$id-2" >>"$RESULTS/dist.log" 2>&1 &
        p1=$!
        if run dist "$HOST_TRAIN" dist-check --device cuda:0 --rank 0 --world-size 2 --rendezvous "file://$WORK/nccl-id2" --run-id "$id-2" && wait $p1; then
            fig="$fig; world size 2 on cuda:0 and cuda:1"
        else
            r=FAIL; fig="$fig; world size 2 failed"
        fi
    else
        fig="$fig (one GPU: world size 2 not run)"
    fi
else
    port=$(( 20000 + RANDOM % 20000 ))
    "$HOST_TRAIN" dist-check --device cpu --rank 1 --world-size 2 --rendezvous "tcp://127.0.0.1:$port" >>"$RESULTS/dist.log" 2>&1 &
    p1=$!
    if run dist "$HOST_TRAIN" dist-check --device cpu --rank 0 --world-size 2 --rendezvous "tcp://127.0.0.1:$port" && wait $p1; then
        r=PASS
    else
        r=FAIL
    fi
    fig="TCP world size 2 on the CPU (NCCL needs a GPU)"
fi
row "5. data-parallel all-reduce" $r "$fig" "$(since "$t")"

# 6. Checkpoint, kill -9, resume: the weights equal an uninterrupted run's, bit for bit.
t=$(now)
TRAIN=(train --arch micro --data "$DATA" --devices "$DEV" --epochs 1 --batch-size 50 --lr 0.02
       --train-limit "$RESUME_LIMIT" --val-limit 500 --checkpoint-every 5 --seed 5
       --deterministic --quiet --no-ten-patch --threads "$THREADS" --workers 2)
fig=""
if run resume "$HOST_TRAIN" "${TRAIN[@]}" --out "$WORK/whole"; then
    "$HOST_TRAIN" "${TRAIN[@]}" --out "$WORK/killed" >>"$RESULTS/resume.log" 2>&1 &
    pid=$!
    killed=no
    for _ in $(seq 1 6000); do
        # The first checkpoint is in place: kill wherever the run is now.
        if [[ -e "$WORK/killed/checkpoints/latest" ]]; then
            kill -9 $pid 2>/dev/null && killed=yes
            break
        fi
        kill -0 $pid 2>/dev/null || break
        sleep 0.01
    done
    wait $pid 2>/dev/null
    step=$(cat "$WORK/killed/checkpoints/latest" 2>/dev/null)
    if [[ $killed == yes ]] && run resume "$HOST_TRAIN" "${TRAIN[@]}" --out "$WORK/killed" --resume \
        && cmp -s "$WORK/whole/model.safetensors" "$WORK/killed/model.safetensors"; then
        r=PASS; fig="killed, resumed from step $((10#${step#step-})): weights bit-identical"
    else
        r=FAIL; fig="killed: $killed at ${step:-?}; weights $(cmp -s "$WORK/whole/model.safetensors" "$WORK/killed/model.safetensors" && echo equal || echo differ)"
    fi
else
    r=FAIL; fig="the uninterrupted run failed"
fi
row "6. checkpoint, kill, resume on $DEV" $r "$fig" "$(since "$t")"

# 7. Two epochs of the micro net on Fashion-MNIST, accuracy through the core.
t=$(now)
LIMIT=()
[[ "$TRAIN_LIMIT" != 0 ]] && LIMIT=(--train-limit "$TRAIN_LIMIT" --val-limit 500)
if run fashion "$HOST_TRAIN" train --arch micro --data "$DATA" --devices "$DEV" --epochs 2 \
        --batch-size 50 --lr 0.02 --quiet --no-ten-patch "${LIMIT[@]}" --out "$WORK/fashion" \
    && run fashion "$ALEXNET" eval "$WORK/fashion/model.blob" --count "$EVAL_COUNT" \
        --images "$DATA/t10k-images-idx3-ubyte.gz" --labels "$DATA/t10k-labels-idx1-ubyte.gz"; then
    acc=$(grep -o 'top-1 accuracy [0-9.]*' "$RESULTS/fashion.log" | tail -1 | awk '{print $3}')
    if at_least "$acc" "$MIN_ACC"; then r=PASS; else r=FAIL; fi
    fig="top-1 ${acc}% on $EVAL_COUNT test images through the core (>= $MIN_ACC%)"
else
    r=FAIL; fig="see fashion.log"
fi
row "7. micro net, 2 epochs of Fashion-MNIST on $DEV" $r "$fig" "$(since "$t")"

{
    echo "GPU check kit, commit $COMMIT, tch $TCH_VERSION against torch $TORCH_VERSION, mode $MODE"
    echo
    echo "| step | result | figure | seconds |"
    echo "|---|---|---|---:|"
    printf '%s\n' "${ROWS[@]}"
} | tee "$RESULTS/summary.md"
if [[ $FAILED -gt 0 ]]; then
    echo "$FAILED check(s) failed; logs in $RESULTS" >&2
    exit 1
fi
echo "all checks passed; logs in $RESULTS"
