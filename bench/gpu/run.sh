#!/bin/bash
# The one device run of issue 26 (bench/gpu/prepare.py made .gpu/ and .whl/): CUDA tests, CUDA figures, the render
# bench, controller training, then the unit suite with CUDA picked, in what is left of 570 s. Results in $OUT.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
T0=$(date +%s)
stamp() { echo "== $(( $(date +%s) - T0 )) s: $*"; }
stamp setup
[ -n "${SKIP_PIP:-}" ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
nproc; free -g | head -2
python3 -c "import torch, numba, numpy, scipy, soundfile; print('torch', torch.__version__, 'numba', numba.__version__, 'numpy', numpy.__version__, 'scipy', scipy.__version__, 'cuda', torch.cuda.is_available())"
python3 bench/gpu/ogg_to_wav.py .gpu /tmp/data || exit 1

stamp "CUDA tests"
timeout ${TESTS_S:-120} python3 -m pytest -q -rfE --noconftest -p no:cacheprovider -o addopts="" \
    tests/unit/test_cuda.py tests/unit/test_compressor.py::test_cuda_matches_cpu > $OUT/tests.log 2>&1
tail -40 $OUT/tests.log

stamp "CUDA figures"
timeout ${FIGURES_S:-150} python3 bench/cuda_check.py /tmp/data/case/stems --reference /tmp/data/case/reference.wav \
    --device ${DEVICE:-cuda} --json $OUT/cuda.json 2>&1 | tail -12

stamp "render bench"
timeout ${RENDER_S:-100} python3 bench/render.py > $OUT/render.log 2>&1; tail -8 $OUT/render.log

stamp training
timeout $(( ${TRAIN_S:-270} + 60 )) python3 -m mixing.train --sessions /tmp/data/sessions --method 1 --steps 100000 \
    --batch-size ${BATCH:-32} --lr ${LR:-5e-4} --excerpt-s ${EXCERPT_S:-3} --max-tracks 8 --config default \
    --out $OUT/controller.pt --seed 1 --time-budget-s ${TRAIN_S:-270} --save-every 25 --log-every 5 \
    --device ${DEVICE:-cuda} --workers ${WORKERS:-14} > $OUT/train.log 2>&1
tail -30 $OUT/train.log

LEFT=$(( ${END_S:-570} - ($(date +%s) - T0) ))
stamp "unit suite with pick_device on this machine, $LEFT s"
[ $LEFT -gt 30 ] && timeout $LEFT python3 -m pytest -q -rfE --noconftest -p no:cacheprovider -o addopts="" tests/unit \
    --ignore=tests/unit/test_settings.py --ignore=tests/unit/test_settings_celery.py \
    --ignore=tests/unit/test_studio_charts.py --ignore=tests/unit/test_studio_ranges.py \
    --ignore=tests/unit/test_bench_studio.py --ignore=tests/unit/test_compose.py > $OUT/unit.log 2>&1
tail -30 $OUT/unit.log
stamp done
nvidia-smi --query-gpu=memory.used --format=csv,noheader
