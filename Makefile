# Every target sets itself up: a fresh clone needs only `make demo` or `make test`.
PY := .venv/bin/python
STAMP := .venv/.installed

.PHONY: demo test setup clean

$(STAMP): requirements.txt
	python3 -m venv .venv
	.venv/bin/pip install --quiet --upgrade pip
	.venv/bin/pip install --quiet -r requirements.txt
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(PY) scripts/demo.py --config configs/demo.yaml --out results/demo

test: $(STAMP)
	$(PY) -m pytest -q tests

clean:
	rm -rf runs checkpoints/demo results/demo
