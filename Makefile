# Every target sets itself up: a fresh clone needs only `make demo` or `make test`.
PY := .venv/bin/python
STAMP := .venv/.installed

.PHONY: demo test test-gpu setup clean bench-quality bench-vocoder

$(STAMP): requirements.txt
	python3 -m venv .venv
	.venv/bin/pip install --quiet --upgrade pip
	.venv/bin/pip install --quiet -r requirements.txt
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(PY) scripts/demo.py --config configs/demo.yaml --out results/demo

# Every test; slow ones included (skip them: make test PYTEST_ARGS='-m "not slow"'). Tests marked
# gpu skip without CUDA: on a GPU machine run them alone with make test-gpu.
PYTEST_ARGS ?=
test: $(STAMP)
	@echo 'make test: all tests (markers: -m "not slow" skips the slow ones; -m gpu runs the CUDA ones, see make test-gpu)'
	$(PY) -m pytest -q tests $(PYTEST_ARGS)

test-gpu: $(STAMP)
	$(PY) -m pytest -q tests -m gpu

# Train the default U-Net recipe on the 46.7 minutes of shared real speech (split by file; 10 %
# held out) within a fixed CPU budget, then score it on the held-out clips (PLCMOS beside PESQ);
# the printed summary opens with PLCMOS, PESQ-WB, LSD and Mel SNR per system and gap length.
SHARED ?= ../shared/data
QUALITY_STEPS ?= 1700
bench-quality: $(STAMP)
	rm -rf checkpoints/bench_quality runs/bench_quality
	$(PY) scripts/train.py --config configs/unet_ljspeech.yaml --set run_name=bench_quality \
	    --set data.root=$(SHARED)/LJSpeech-more \
	    --set 'data.extra_roots=[$(SHARED)/LJSpeech-mini,$(SHARED)/LJSpeech-mini-16k]' \
	    --set data.test_fraction=0.1 --set train.max_steps=$(QUALITY_STEPS) --set train.num_threads=2
	$(PY) scripts/evaluate.py --checkpoint checkpoints/bench_quality/best.pt --split test \
	    --data $(SHARED)/LJSpeech-more $(SHARED)/LJSpeech-mini $(SHARED)/LJSpeech-mini-16k --gap-ms 100 200 400 \
	    --gaps-per-file 4 --baselines zero linear lpc oracle --metrics pesq stoi plcmos --out results/bench_quality --force

# Every vocoder method on the true Mel of 200 ms gaps in 8 real clips: gap LSD, clip PESQ-WB and
# ms per gap at 8, 25, 32 and 100 iterations, with librosa's mel_to_audio as the reference. The
# learned vocoders' nets are trained first on the LJSpeech-mini files of the training split;
# the benchmark scores the held-out test split (30 % of the files).
VOCODER_STEPS ?= 1000
VOCODER_SPLIT := --set data.root=$(SHARED)/LJSpeech-mini --set data.test_fraction=0.3
bench-vocoder: $(STAMP)
	rm -rf checkpoints/melspec2spec_bench runs/melspec2spec_bench checkpoints/degli_bench runs/degli_bench
	$(PY) scripts/train_vocoder.py --config configs/melspec2spec_ljspeech.yaml --set run_name=melspec2spec_bench \
	    $(VOCODER_SPLIT) --set train.max_steps=$(VOCODER_STEPS) --set train.num_threads=2
	$(PY) scripts/train_vocoder.py --config configs/degli_ljspeech.yaml --set run_name=degli_bench \
	    $(VOCODER_SPLIT) --set train.max_steps=$(VOCODER_STEPS) --set train.num_threads=2
	$(PY) scripts/benchmark_vocoder.py --data $(SHARED)/LJSpeech-mini --split test $(VOCODER_SPLIT) \
	    --mel-inverse lstsq pinv nnls --iters 8 25 32 100 \
	    --vocoder-checkpoint checkpoints/melspec2spec_bench/best.pt checkpoints/degli_bench/best.pt

clean:
	rm -rf runs/demo checkpoints/demo runs/demo_ljspeech checkpoints/demo_ljspeech results/demo
