# One-command entry points. `make run` and `make test` set up .venv first when
# needed (from requirements.lock), so both work on a fresh clone.
VENV        := .venv
SETUP_STAMP := $(VENV)/.setup-done
PROFILE     ?= full
RUN_ARGS    ?=
PYTEST_ARGS ?=
# Every core, a test file per worker (module fixtures run once; tests/conftest.py
# starts the slowest files first).
PYTEST_PARALLEL ?= -n auto --dist loadfile --no-loadscope-reorder
BENCH_ARGS  ?=
IMAGE       ?= mnist-dae-pipeline:latest

.PHONY: setup run smoke tensorboard test test-fast lock lock-gpu image image-gpu compile report bench-quality bench-speed bench-scale bench-recipes clean help

help:
	@echo "make run     set up if needed, run the pipeline on full MNIST (PROFILE=smoke for a quick one)"
	@echo "make test    set up if needed, run all tests (PYTEST_ARGS='-m \"not e2e\"' for the fast ones)"
	@echo "make setup   create $(VENV) from requirements.lock"
	@echo "make lock    re-resolve requirements.lock from requirements.in with uv"
	@echo "make tensorboard  TensorBoard on the newest run's training logs and denoised images"
	@echo "make report  write the newest run's HTML report beside its pipeline root (build/smoke/report.html for smoke)"
	@echo "make bench-quality / bench-speed / bench-scale   the benchmarks (BENCH_ARGS=--quick for a few minutes)"
	@echo "make bench-recipes RECIPES_DIR=D   score recipes trained into D (bench/README.md, Recipes)"
	@echo "make compile compile the Kubeflow pipeline to build/pipeline.json (IMAGE=...)"
	@echo "make image   docker build the pipeline image (IMAGE=...); make image-gpu: with CUDA TensorFlow"

setup: $(SETUP_STAMP)

$(SETUP_STAMP): requirements.lock pyproject.toml scripts/setup.sh scripts/debian-root.sh
	bash scripts/setup.sh

run: setup
	$(VENV)/bin/dae-pipeline run --profile $(PROFILE) $(RUN_ARGS)

smoke:
	$(MAKE) run PROFILE=smoke

# The follow-up commands read the newest run of either profile unless
# PROFILE is given on make's command line.
FOLLOW_UP_PROFILE = $(if $(filter command line,$(origin PROFILE)),--profile $(PROFILE))

tensorboard: setup
	$(VENV)/bin/dae-pipeline tensorboard $(FOLLOW_UP_PROFILE)

report: setup
	$(VENV)/bin/dae-pipeline report $(FOLLOW_UP_PROFILE)

bench-quality: setup
	$(VENV)/bin/python -m bench.quality $(BENCH_ARGS)

bench-speed: setup
	$(VENV)/bin/python -m bench.speed $(BENCH_ARGS)

bench-scale: setup
	$(VENV)/bin/python -m bench.scale $(BENCH_ARGS)

# Training: `python -m bench.recipes --train DIR` on a machine with an accelerator
# (any Keras 3 backend; see bench/README.md). This scores DIR here.
RECIPES_DIR ?= build/recipes
bench-recipes: setup
	$(VENV)/bin/python -m bench.recipes --evaluate $(RECIPES_DIR)

test: setup
	$(VENV)/bin/python -m pytest $(PYTEST_PARALLEL) $(PYTEST_ARGS)

test-fast:
	$(MAKE) test PYTEST_ARGS='-m "not e2e and not kfp"'

# For the stack's one target, whatever host resolves it: Python 3.13 on
# x86-64 Linux with glibc >= 2.39 (scripts/setup.sh, the Dockerfile).
LOCK_TARGET := --python-version 3.13 --python-platform x86_64-manylinux_2_39

lock:
	uv pip compile requirements.in -o requirements.lock --generate-hashes $(LOCK_TARGET) --quiet
	$(MAKE) lock-gpu

# The GPU image's lock: requirements.lock's pins plus TensorFlow's CUDA wheels.
lock-gpu:
	uv pip compile requirements-gpu.in -o requirements-gpu.lock --generate-hashes $(LOCK_TARGET) --quiet

compile: setup
	$(VENV)/bin/dae-pipeline compile --target kubeflow --output build/pipeline.json --image $(IMAGE) $(RUN_ARGS)

# Needs a Docker engine (none on the project's CI machines).
image:
	docker build -t $(IMAGE) .

image-gpu:
	docker build --build-arg LOCK=requirements-gpu.lock -t $(IMAGE) .

clean:
	rm -rf build
