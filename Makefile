# lightning-iba: every target installs the environment first, so a fresh clone needs only `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

DATASETS := imdb rotten_tomatoes agnews rte mnli
DATASET ?= imdb
# paper: the paper's bert-base-uncased at 512 tokens (GPU); cpu: the bundled MiniLM at 128 tokens. Default: by hardware.
PROFILE ?= $(shell $(PY) -c "import torch; print('paper' if torch.cuda.is_available() else 'cpu')" 2>/dev/null || echo cpu)

.PHONY: install test demo finetune clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

test: install
	$(PY) -m pytest -q

demo: install
	@test -f runs/demo/model/config.json || $(PY) train.py --config configs/finetune/demo.yaml

finetune: install
	@case " $(DATASETS) " in *" $(DATASET) "*) ;; *) echo "unknown DATASET '$(DATASET)'; valid: $(DATASETS)" >&2; exit 2;; esac
	@echo "finetune: DATASET=$(DATASET) PROFILE=$(PROFILE)"
	$(PY) train.py --config configs/finetune/$(DATASET).yaml \
		$(if $(filter cpu,$(PROFILE)),--config configs/finetune/cpu.yaml) \
		$(if $(MODEL),--data.model_name_or_path $(MODEL)) \
		$(if $(OUT),--export.dirpath $(OUT)) \
		$(if $(DEVICES),--trainer.devices $(DEVICES)) \
		$(ARGS)

clean:
	rm -rf runs wandb lightning_logs .pytest_cache
