#!/usr/bin/env bash
# Every GPU measurement of issue 13 in one call on a lent GPU machine (the `device` tool).
#
#   On the CPU machine, first:   bash benchmarks/gpu_run.sh wheels      (fills .whl/, ~41 MB)
#   then one device call:        run(command="bash benchmarks/gpu_run.sh all",
#                                    carry=[".whl"], timeout_s=570)
#   a re-run of what is left:    run(command="BUDGET=200 bash benchmarks/gpu_run.sh STEP...",
#                                    carry=[".whl"], timeout_s=230)   (the script names them)
#   here, without a GPU:         bash benchmarks/gpu_run.sh --dry-run all
#
# Steps, in the order `all` runs them (most important first). Each has a time limit; a step
# starts only if it fits, limit included, in what is left of BUDGET seconds (default 540),
# so the call ends within BUDGET; the steps left out are listed for the re-run:
#   info        machine, versions
#   tests       the CUDA-only tests (pinned framed buffers, fp16 NaN guard, CUDA resize, ...)
#   e2e-small   DA-V2-Metric-Small-518 e2e p50/p99, bf16 + reduce-overhead vs fp32 eager,
#               with the documented tolerance (median rel. depth error <= 1e-2, no lost pixel)
#   dds         the compiled node over DDS at 30 Hz, 1280x720, stride 1 and 2 (300 frames)
#   e2e-others  DPT-Large-384 (bf16) and DPT-Hybrid-384 (fp16, see docs/benchmarks.md),
#               reduce-overhead vs fp32 eager, same tolerance
#   dds-eager   the node over DDS as `dds`, compile none
#   dds-objects the compiled node, stride 1, publishing message objects (serialized_publish
#               false): what the serialized path saves over DDS
#   node        bench_node.py --publish (CPU stages and the publish paths on that machine)
# Not in `all`: model (bench_model.py, ours against transformers, the issue-6 figures).
# Full logs go to $OUT (or /tmp/gpu_out); each step's table is also printed.
# The machine's python3 has torch (CUDA) and transformers; the ROS 2 wheels for its Python
# come in .whl/ (`wheels` step: pip download --no-deps of this venv's ros-* packages, cp312).
set -uo pipefail
DRY=0
if [ "${1:-}" = "--dry-run" ]; then DRY=1; shift; fi
OUT=${OUT:-/tmp/gpu_out}
BUDGET=${BUDGET:-540}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD TORCHINDUCTOR_CACHE_DIR=/tmp/inductor_cache
START=$SECONDS
ALL=(info tests e2e-small dds e2e-others dds-eager dds-objects node)
declare -A LIMIT=([wheels]=0 [info]=20 [tests]=150 [e2e-small]=150 [dds]=240
    [e2e-others]=320 [dds-eager]=150 [dds-objects]=120 [node]=150 [model]=300)
CUDA_TESTS=(test/core/test_colormap.py test/core/test_geometry.py test/core/test_pointcloud.py
    test/core/test_transfer.py test/messages/test_cdr.py test/core/test_finite_guard.py
    test/core/test_warmup.py test/model/test_processing.py test/core/test_pipeline_engine.py test/core/test_pipeline.py)
TOL=1e-2

PY=python3
if [ $DRY = 1 ]; then
    # the CPU machine: this checkout's venv, tiny sizes, the same scripts and arguments
    PY=${DRY_PY:-/work/main/.venv/bin/python}
    export OMP_NUM_THREADS=1
    E2E="--device cpu --repeat 1 --size 48x64"
    HYBRID_DTYPE=bfloat16  # float16 needs CUDA
    DDS="--case synthetic --device cpu --sizes 240x320 --rate 5 --seconds 2 --warmup-seconds 1 \
--drain 2 --baseline-repeat 2"
    TESTS="--collect-only -q"
    NODE="--repeat 2"
else
    E2E="--repeat 50"
    DDS="--sizes 720x1280 --rate 30 --seconds 10 --baseline-repeat 30"
    TESTS="-q -rs"
    HYBRID_DTYPE=float16
    NODE="--repeat 10"
fi

setup_venv() {
    [ $DRY = 1 ] && return 0
    [ -d .whl ] || { echo "no .whl/: run 'bash benchmarks/gpu_run.sh wheels' on the CPU machine"
        return 1; }
    if [ ! -x /tmp/venv/bin/python ]; then
        # python3 there is itself a venv: link its packages (torch, ...) into ours
        python3 -m venv /tmp/venv || return 1
        python3 -c "import site; print(site.getsitepackages()[0])" \
            > "$(/tmp/venv/bin/python -c 'import site; print(site.getsitepackages()[0])')/base.pth"
        /tmp/venv/bin/python -m pip install -q --no-index --no-deps --no-compile .whl/*.whl \
            || { echo "the .whl/ wheels do not fit $(python3 -V): make them with" \
                 "PYVER=<major.minor> bash benchmarks/gpu_run.sh wheels"; return 1; }
    fi
    PY=/tmp/venv/bin/python
}

# run_step NAME SECONDS COMMAND...: the command under `timeout`, output to $OUT/NAME.log
run_step() {
    local name=$1 limit=$2
    shift 2
    echo "=== $name ($(date +%T), ${limit}s max): $*"
    local t0=$SECONDS
    timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    grep -v "^Writing model\|it/s\]$" "$OUT/$name.log" | tail -n 40
    echo "=== $name: rc=$rc in $((SECONDS - t0)) s"
    return $rc
}

step() {
    case $1 in
        wheels)  # on the CPU machine: the ROS 2 wheels of this venv, for the GPU's Python 3.12
            local venv=${VENV:-/work/main/.venv}
            "$venv/bin/pip" list --format=freeze 2>/dev/null | grep -i "^ros[-_]" > /tmp/ros_wheels.txt
            mkdir -p .whl
            "$venv/bin/pip" download -q --no-deps -d .whl --python-version "${PYVER:-3.12}" \
                --only-binary=:all: --platform manylinux_2_28_x86_64 \
                --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
                --platform linux_x86_64 --platform any -r /tmp/ros_wheels.txt 2>&1 \
                | grep -v "is ignored"
            echo "$(ls .whl | wc -l) wheels, $(du -sh .whl | cut -f1) in .whl/ (carry it)" ;;
        info)
            if [ $DRY = 0 ]; then
                nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv
            fi
            $PY -c "import sys, torch, transformers, rclpy; print(sys.version.split()[0], \
torch.__version__, torch.version.cuda, transformers.__version__, torch.cuda.is_available() and \
torch.cuda.get_device_name(), 'rclpy ok')"
            nproc; date -u +%FT%TZ ;;
        tests)
            run_step tests 150 $PY -m pytest $TESTS -p no:cacheprovider "${CUDA_TESTS[@]}" ;;
        e2e-small)
            run_step e2e_small 150 $PY benchmarks/bench_e2e.py $E2E --tolerance $TOL \
                --cases DA-V2-Metric-Small-518 ;;
        e2e-others)
            run_step e2e_large 150 $PY benchmarks/bench_e2e.py $E2E --tolerance $TOL \
                --cases DPT-Large-384
            run_step e2e_hybrid 170 $PY benchmarks/bench_e2e.py $E2E --tolerance $TOL \
                --cases DPT-Hybrid-384 --dtype $HYBRID_DTYPE ;;
        dds)
            run_step dds_compiled 240 $PY benchmarks/bench_node_dds.py $DDS --strides 1 2 ;;
        dds-eager)
            run_step dds_eager 150 $PY benchmarks/bench_node_dds.py $DDS --strides 1 2 \
                --compile none ;;
        dds-objects)
            run_step dds_objects 120 $PY benchmarks/bench_node_dds.py $DDS --serialized false ;;
        model)
            run_step bench_model 300 $PY benchmarks/bench_model.py --cpu-cases --repeat 30 ;;
        node)
            run_step bench_node 150 env OMP_NUM_THREADS=2 $PY benchmarks/bench_node.py \
                $NODE --baseline-repeat 1 --publish ;;
        *) echo "unknown step $1 (steps: wheels ${ALL[*]})"; return 2 ;;
    esac
}

steps=("$@")
[ "${#steps[@]}" = 0 ] && { grep '^#' "$0" | sed -n '2,27p'; exit 2; }
[ "${steps[0]}" = all ] && steps=("${ALL[@]}")
if [ "${steps[0]}" != wheels ]; then
    setup_venv || exit 1
fi
left=()
for s in "${steps[@]}"; do
    if [ $((SECONDS - START + ${LIMIT[$s]:-0})) -gt "$BUDGET" ]; then
        left+=("$s")
        continue
    fi
    step "$s" || echo "(step $s failed; its log is $OUT/*.log)"
done
echo "=== done in $((SECONDS - START)) s"
if [ "${#left[@]}" -gt 0 ]; then
    echo "=== not started (over the ${BUDGET}s budget): bash benchmarks/gpu_run.sh ${left[*]}"
fi
