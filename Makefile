# hardneg: every target builds the virtual environment first (idempotent, stamp-based).
PYTHON_SYS ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1

DATASET ?= MUTAG
PROFILE ?= quick
GRAPH_ARGS ?=
ARCH ?=
IMAGE_DATASETS := cifar10-jpeg cifar10 cifar100 stl10

.PHONY: help setup test lint graph graph-all image sentence sentence-finetune sentence-finetune-cpu sentence-seeds bench-loss bench-graph tables reproduce-quick clean

help:
	@echo "make setup                       build .venv (re-runs only when requirements.txt changes)"
	@echo "make graph DATASET=MUTAG [PROFILE=quick|paper]   InfoGraph + hard negatives on one TU data set"
	@echo "make graph-all [PROFILE=quick]    the 8 staged TU data sets"
	@echo "make image [PROFILE=quick|paper DATASET=stl10 ARCH=resnet50]   SimCLR: simclr/debiased/hard"
	@echo "make sentence [PROFILE=quick]    quick-thought: plain/debiased/hard + SentEval-style tasks"
	@echo "make sentence-finetune [SEEDS=\"0 1 2\"]   MiniLM on neighbouring sentences: every objective at every seed"
	@echo "make sentence-finetune-cpu [SEEDS=\"0 1 2\"]  the quick CPU comparison: 30 steps, CR/MPQA/TREC, every objective"
	@echo "make sentence-seeds [SEEDS=\"0 1 2\"]      shipped/untrained rows, the fine-tunes, quick-thought at every seed"
	@echo "make tables                      regenerate tables/ from tables/records/*.jsonl"
	@echo "make bench-loss                  loss microbenchmarks -> tables/loss_speed.md"
	@echo "make bench-graph                 InfoGraph epoch time, released loop vs ours -> tables/graph_epoch_speed.md"
	@echo "make reproduce-quick             every quick suite (python -m benchmarks list), then the tables"
	@echo "make test                        ruff + the test suite"

setup: $(STAMP)

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON_SYS) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# Passive OpenMP waiting only for the parallel test workers: a lone training job runs up to 2x faster
# with the default spinning (MUTAG epochs, `make bench-graph`).
test: lint
	OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-PASSIVE} $(PY) -m pytest -q

graph: $(STAMP)
	$(PY) -m graph --dataset $(DATASET) --profile $(PROFILE) $(GRAPH_ARGS)

graph-all: $(STAMP)
	$(PY) -m graph --dataset all --profile $(PROFILE) $(GRAPH_ARGS)

# DATASET defaults to MUTAG for `make graph`; image runs fall back to the staged CIFAR-10 (JPEG).
image: $(STAMP)
	$(PY) -m image run --profile $(PROFILE) --dataset $(if $(filter $(IMAGE_DATASETS),$(DATASET)),$(DATASET),cifar10-jpeg) $(if $(ARCH),--arch $(ARCH))

sentence: $(STAMP)
	$(PY) -m sentence run --profile $(PROFILE)

# MiniLM fine-tuned on (sentence, next sentence) pairs: every objective of FINETUNE_OBJECTIVES (registry specs: mnrl is
# sentence-transformers' MultipleNegativesRankingLoss, hardness its in_batch_negatives hardness at alpha 9 and 5, hard
# at tau_plus 0 as recorded so far) at every seed, one thread, one cell at a time; a re-run skips recorded cells.
SEEDS ?= 0 1 2
FINETUNE_OBJECTIVES ?= mnrl hard:tau_plus=0 debiased hardness:alpha=9 hardness:alpha=5
SENTENCE_RECORDS ?= tables/records/sentence.jsonl
SENTENCE_RUN := --profile $(PROFILE) --threads 1 --jobs 1 --no-progress --records $(SENTENCE_RECORDS)
sentence-finetune: $(STAMP)
	for seed in $(SEEDS); do for objective in $(FINETUNE_OBJECTIVES); do \
		OMP_NUM_THREADS=1 $(PY) -m sentence st-finetune --objective $$objective --seed $$seed $(SENTENCE_RUN) || exit 1; done; done

# The quick CPU comparison in tables/sentence.md (~8 min a cell on a shared core): 30 steps, CR/MPQA/TREC only, the
# shipped model on the same tasks; its checkpoints in their own folder (they are not the 100-step ones).
FINETUNE_QUICK := --steps 30 --tasks CR,MPQA,TREC
sentence-finetune-cpu: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m sentence eval --encoder minilm --seed 0 --tasks CR,MPQA,TREC $(SENTENCE_RUN)
	for seed in $(SEEDS); do for objective in $(FINETUNE_OBJECTIVES); do \
		OMP_NUM_THREADS=1 $(PY) -m sentence st-finetune --objective $$objective --seed $$seed $(FINETUNE_QUICK) $(SENTENCE_RUN) \
			--out "runs/sentence/cpu30/minilm-$$objective-seed$$seed.pt" || exit 1; done; done

# The sentence table's cells: shipped and untrained rows first, then the fine-tunes, then quick-thought (hours each).
sentence-seeds: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m sentence eval --encoder minilm --seed 0 $(SENTENCE_RUN)
	for seed in $(SEEDS); do OMP_NUM_THREADS=1 $(PY) -m sentence eval --encoder random --seed $$seed $(SENTENCE_RUN) || exit 1; done
	$(MAKE) sentence-finetune
	for seed in $(SEEDS); do OMP_NUM_THREADS=1 $(PY) -m sentence run --seed $$seed --no-random --no-minilm $(SENTENCE_RUN) || exit 1; done

bench-loss: $(STAMP)
	$(PY) -m benchmarks.loss_speed

bench-graph: $(STAMP)
	$(PY) -m benchmarks.graph_epoch_speed && $(PY) -m benchmarks tables

tables: $(STAMP)
	$(PY) -m benchmarks tables

# Every quick suite on CPU, then the tables (many hours on 2 cores; resumable).
reproduce-quick: $(STAMP)
	for suite in loss-speed graph image sentence ablations; do $(PY) -m benchmarks run $$suite --profile quick || exit 1; done
	$(PY) -m benchmarks tables

clean:
	rm -rf .cache .pytest_cache .ruff_cache
