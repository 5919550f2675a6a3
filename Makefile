# kfp-operator: common tasks. `make dev` runs the operator against a local stack; `make test` runs every test.
SHELL := /bin/bash
VENV ?= .venv
PYTHON := $(VENV)/bin/python
DEV_DIR ?= .dev
# The KFP API server of `make dev` / `make up`: the emulator's own, or KFP=real (built from source).
KFP ?= emulator
KFP_BACKEND_PREREQ := $(if $(filter real,$(KFP)),kfp-backend)

.PHONY: prereqs venv bins kfp-backend generate lint format test dev up down status pipelines bench

# Python 3.11+ and Go are all the machine needs; this says in one line which is missing.
prereqs:
	@bash hack/check-prereqs.sh python go

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@bash hack/check-prereqs.sh python
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e ".[test]"
	touch $@

# kube-apiserver, etcd, kubectl and helm, then nats-server, promtool, bexpr-eval and warning-parse, built from upstream Go
# modules and cached per version (minutes the first time, instant after); prints their directories.
bins:
	@bash hack/check-prereqs.sh go
	bash hack/build-k8s-bins.sh
	bash hack/build-tools.sh
	bash hack/build-bexpr-eval.sh
	bash hack/build-warning-parse.sh

# The real KFP API server and persistence agent, built from source and cached per version.
kfp-backend:
	bash hack/build-kfp-backend.sh

generate: venv
	$(PYTHON) hack/gen_crds.py
	$(PYTHON) hack/gen_config_docs.py

# Style, the layering of the packages (import-linter contracts in pyproject.toml) and strict types.
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: prereqs venv bins kfp-backend
	$(VENV)/bin/pytest

# The benchmarks (about 15 minutes): their own local stack and the real operator; see docs/performance.md.
# Options through BENCH_ARGS, e.g. make bench BENCH_ARGS="--runs 200 --cache-runs 2000".
bench: venv bins
	$(PYTHON) -m bench $(BENCH_ARGS)

# The operator image, with docker or, without a Docker engine, buildah (daemonless); prints it.
# IMAGE=registry.example.com/kfp-operator:0.1.0 make image (default kfp-operator:<version>);
# PYTHON_IMAGE=... picks another base. See docs/installation.md.
.PHONY: image
image:
	@bash hack/build-image.sh $(IMAGE)

# The local stack (control plane, KFP emulator with MLMD, NATS) with the example pipelines,
# then the operator in the foreground (Ctrl-C stops it; `make down` stops the stack).
dev: prereqs venv bins $(KFP_BACKEND_PREREQ) up
	$(VENV)/bin/kfp-devstack --dir $(DEV_DIR) examples
	$(VENV)/bin/kfp-operator --config $(DEV_DIR)/operator.yaml --kubeconfig $(DEV_DIR)/kubeconfig

up: venv bins $(KFP_BACKEND_PREREQ)
	$(VENV)/bin/kfp-devstack --dir $(DEV_DIR) up --kfp $(KFP)

down: venv
	$(VENV)/bin/kfp-devstack --dir $(DEV_DIR) down

status: venv
	$(VENV)/bin/kfp-devstack --dir $(DEV_DIR) status
