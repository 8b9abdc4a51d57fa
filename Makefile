# lightning-iba: every target installs the environment first, so a fresh clone needs only `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# the task registry (lightning_iba/data/tasks.py) is the one list of datasets; each has configs/{finetune,evaluate}/<name>.yaml
DATASETS = $(shell $(PY) -c "from lightning_iba.data.tasks import TASKS; print(' '.join(TASKS))" 2>/dev/null)
TABLE1_DATASETS = $(shell $(PY) -c "from lightning_iba.data.tasks import TASKS; print(' '.join(t.name for t in TASKS.values() if t.in_table1))" 2>/dev/null)
DATASET ?= imdb
# paper: the paper's bert-base-uncased at 512 tokens (GPU); cpu: the bundled MiniLM at 128 tokens. Default: by hardware.
PROFILE ?= $(shell $(PY) -c "import torch; print('paper' if torch.cuda.is_available() else 'cpu')" 2>/dev/null || echo cpu)

# the demo's evaluation is configs/evaluate/demo.yaml (128 tokens, under 20 min on 2 cores); DEMO_EVAL layers
# another config over it, e.g. configs/evaluate/demo_256.yaml (longer texts)
DEMO_EVAL ?=
DEMO_EVAL_CONFIGS = configs/evaluate/demo.yaml $(DEMO_EVAL)

EVAL_CONFIGS = --config configs/evaluate/$(DATASET).yaml --config configs/evaluate/$(PROFILE).yaml
# after every --config, so that METHODS / INSTANCES / LAYER / DEVICES win over a sweep's config too
EVAL_OVERRIDES = $(if $(METHODS),--methods $(METHODS)) $(if $(INSTANCES),--instances $(INSTANCES)) $(if $(LAYER),--layer $(LAYER)) \
	$(if $(DEVICES),--devices $(DEVICES))
CHECK_DATASET = @case " $(DATASETS) " in *" $(DATASET) "*) ;; *) echo "unknown DATASET '$(DATASET)'; valid: $(DATASETS)" >&2; exit 2;; esac

.PHONY: install test demo finetune evaluate table1 reproduce reproduce-status reproduce-save layer-sweep beta-sweep docs gpu-benchmark clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

test: install
	$(PY) -m pytest -q

# The main job on the embedded default: fine-tune (once), explain one review, evaluate 4 methods on 100 reviews.
demo: install
	@test -f runs/demo/model/config.json || $(PY) train.py --config configs/finetune/demo.yaml
	$(PY) attribute.py --config configs/attribute/demo.yaml
	$(PY) evaluate.py $(foreach c,$(DEMO_EVAL_CONFIGS),--config $(c)) --resume true
	@echo "demo: model runs/demo/model, attribution runs/demo/attribution, evaluation $$(sed -n 's/^out: *//p' $(DEMO_EVAL_CONFIGS) | tail -1) (W&B run in its wandb/ folder)"
	@echo "demo: explorer page $$(sed -n 's/^out: *//p' $(DEMO_EVAL_CONFIGS) | tail -1)/report.html (open it in any browser)"

finetune: install
	$(CHECK_DATASET)
	@echo "finetune: DATASET=$(DATASET) PROFILE=$(PROFILE)"
	$(PY) train.py --config configs/finetune/$(DATASET).yaml \
		$(if $(filter cpu,$(PROFILE)),--config configs/finetune/cpu.yaml) \
		$(if $(MODEL),--data.model_name_or_path $(MODEL)) \
		$(if $(OUT),--export.dirpath $(OUT)) \
		$(if $(DEVICES),--trainer.devices $(DEVICES)) \
		$(ARGS)

evaluate: install
	$(CHECK_DATASET)
	$(PY) evaluate.py $(EVAL_CONFIGS) $(EVAL_OVERRIDES) $(ARGS)

# Table 1: every dataset with the paper's settings (needs the fine-tuned models and the data), MNLI twice.
table1: install
	for d in $(TABLE1_DATASETS); do $(MAKE) --no-print-directory evaluate DATASET=$$d ARGS="--resume true $(ARGS)" || exit 1; done
	$(MAKE) --no-print-directory evaluate DATASET=mnli ARGS="--split test_mismatched --out runs/mnli/eval-mismatched --resume true $(ARGS)"
	{ head -n 1 runs/imdb/eval/table1.csv; for f in $(foreach d,$(TABLE1_DATASETS),runs/$(d)/eval/table1.csv) runs/mnli/eval-mismatched/table1.csv; do tail -n +2 $$f; done; } > runs/table1.csv
	@cat runs/table1.csv

# Table 1 (five columns, intervals) and Figures 1-2 end to end from configs/reproduce/$(PROFILE).yaml: fine-tunes,
# chooses IBA's layer and beta on validation, evaluates the test sets, then the ERASER plausibility plans.
# Resumable: run it again after a kill; finished stages are skipped (ONLY="rte,imdb" limits the datasets,
# ONLY=eraser runs only the plausibility plans).
reproduce: install
	@test -f configs/reproduce/$(PROFILE).yaml || { echo "no configs/reproduce/$(PROFILE).yaml; profiles: $$(ls configs/reproduce | sed 's/.yaml//')" >&2; exit 2; }
	$(PY) -m lightning_iba.cli.reproduce --config configs/reproduce/$(PROFILE).yaml $(if $(ONLY),--only [$(ONLY)]) $(ARGS)

# Where that reproduction stands: every stage, done (wall time) or running, interrupted, failed, not started.
reproduce-status: install
	@$(PY) -m lightning_iba.cli.reproduce --config configs/reproduce/$(PROFILE).yaml $(if $(ONLY),--only [$(ONLY)]) --status true

# Copies the stage in progress (settings, shards, heartbeat) into results/<profile>/.../progress/ so that a commit
# carries it: a fresh clone's `make reproduce` then resumes it (fine-tunes run again, and must give the same model).
reproduce-save: install
	@$(PY) -m lightning_iba.cli.reproduce --config configs/reproduce/$(PROFILE).yaml --save_progress true

layer-sweep: install
	$(CHECK_DATASET)
	$(PY) evaluate.py $(EVAL_CONFIGS) --config configs/evaluate/layer_sweep.yaml $(EVAL_OVERRIDES) --out runs/$(DATASET)/layer-sweep $(ARGS)

beta-sweep: install
	$(CHECK_DATASET)
	$(PY) evaluate.py $(EVAL_CONFIGS) --config configs/evaluate/beta_sweep.yaml $(EVAL_OVERRIDES) --out runs/$(DATASET)/beta-sweep $(ARGS)

# the README's flag tables, regenerated from the commands' parsers (a test checks they are current)
docs: install
	$(PY) -m lightning_iba.cli.docs

# every GPU figure of the README, one JSON (runs/gpu-benchmark/gpu.json); `bash benchmarks/gpu.sh --dry-run` on a CPU
gpu-benchmark: install
	PYTHON=$(PY) bash benchmarks/gpu.sh

clean:
	rm -rf runs wandb lightning_logs .pytest_cache
