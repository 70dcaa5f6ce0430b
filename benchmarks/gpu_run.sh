#!/usr/bin/env bash
# One call on a lent GPU machine (the workplace's `device` tool): set up, then run the
# CUDA-only tests and the GPU benchmarks; full logs go to $OUT (or /tmp/gpu_out).
#   bash benchmarks/gpu_run.sh STEP...
#   STEP: info tests model e2e e2e-hybrid e2e-eager dds dds-eager dds-stride2 node
# The machine's python3 has torch (CUDA) and transformers; the ROS 2 wheels for its Python
# travel in .whl/ (pip download --no-deps --python-version 3.12 ... of the `ros` extra).
set -uo pipefail
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD TORCHINDUCTOR_CACHE_DIR=/tmp/inductor_cache
PY=python3
if [ -d .whl ]; then
    if [ ! -x /tmp/venv/bin/python ]; then
        # python3 there is itself a venv: link its packages (torch, ...) into ours
        python3 -m venv /tmp/venv || exit 1
        python3 -c "import site; print(site.getsitepackages()[0])" \
            > "$(/tmp/venv/bin/python -c 'import site; print(site.getsitepackages()[0])')/base.pth"
        /tmp/venv/bin/python -m pip install -q --no-index --no-deps --no-compile .whl/*.whl || exit 1
    fi
    PY=/tmp/venv/bin/python
fi

for step in "$@"; do
    echo "=== $step"
    case $step in
        info)
            nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv
            $PY -c "import sys, torch, transformers; print(sys.version.split()[0], torch.__version__, \
torch.version.cuda, transformers.__version__, torch.cuda.get_device_name())"
            $PY -c "import rclpy, sensor_msgs.msg; print('rclpy ok')"
            nproc ;;
        tests)
            $PY -m pytest -q -p no:cacheprovider -rs test/test_core_colormap.py \
                test/test_core_geometry.py test/test_core_pointcloud.py test/test_core_transfer.py \
                test/test_processing.py \
                test/test_pipeline_engine.py test/test_pipeline.py 2>&1 | tee "$OUT/tests.log" | tail -15 ;;
        model)
            $PY benchmarks/bench_model.py --cpu-cases --repeat 30 2>&1 | grep -v "Writing model" \
                | tee "$OUT/bench_model.log" ;;
        e2e)
            $PY benchmarks/bench_e2e.py --repeat 100 --profile 2>&1 | tee "$OUT/bench_e2e.log" \
                | grep -v "^-\|^Name\|^ " ;;
        e2e-hybrid)  # which precision / compile step moves the Hybrid's depth
            $PY benchmarks/bench_e2e.py --repeat 30 --cases DPT-Hybrid-384 --paths float32:none \
                bfloat16:none bfloat16:default float16:reduce-overhead float32:reduce-overhead \
                2>&1 | tee "$OUT/bench_e2e_hybrid.log" ;;
        e2e-eager)
            $PY benchmarks/bench_e2e.py --repeat 100 --compile none 2>&1 | tee "$OUT/bench_e2e_eager.log" ;;
        dds)
            $PY benchmarks/bench_node_dds.py --rate 30 --seconds 10 --baseline-repeat 30 2>&1 \
                | tee "$OUT/bench_node_dds.log" ;;
        dds-eager)
            $PY benchmarks/bench_node_dds.py --rate 30 --seconds 10 --compile none --baseline-repeat 30 \
                2>&1 | tee "$OUT/bench_node_dds_eager.log" ;;
        dds-stride2)
            $PY benchmarks/bench_node_dds.py --rate 30 --seconds 10 --stride 2 --baseline-repeat 30 \
                2>&1 | tee "$OUT/bench_node_dds_stride2.log" ;;
        node)
            OMP_NUM_THREADS=2 $PY benchmarks/bench_node.py 2>&1 | tee "$OUT/bench_node.log" ;;
        *) echo "unknown step $step"; exit 2 ;;
    esac
done
