# Milepost. The two commands a new machine needs (as root): `make demo` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
ROOT := $(CURDIR)
VENV := $(ROOT)/.venv
BIN := $(VENV)/bin
export MILEPOST_ROOT := $(ROOT)
export ANSIBLE_CONFIG := $(ROOT)/ansible.cfg
export PATH := $(BIN):$(PATH)
HOSTS ?= 6
SCENARIOS := $(notdir $(wildcard molecule/*))

.PHONY: help deps venv setup postgres lab lab-down demo test lint unit ledger-tests integration integration-fleet \
	integration-down-up molecule \
	reliability reliability-fast reliability-fast-nolab reliability-fast-lab requirements \
	cli-reference clean

help:
	@echo "make demo   set up, bring the lab up, run playbooks/maintain.yml"
	@echo "make test   set up, lint, unit + integration tests, molecule scenarios"
	@echo "make reliability   crashes, faults, races, tampering, hostile input, secrets (long)"
	@echo "make lab | lab-down | lint | unit | ledger-tests | integration | molecule | bench"
	@echo "     bench-ledger | bench-queries | bench-efficiency | bench-mitogen | bench-emergency"
	@echo "     bench-drift | bench-tuning | bench-scale | bench-cycle | bench-cli (one each)"
	@echo "     requirements | cli-reference (docs/cli.md from the command) | clean"

deps:
	@scripts/install-deps

$(VENV)/.installed: requirements.txt pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --require-hashes -r requirements.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

venv: deps $(VENV)/.installed

postgres: deps
	scripts/postgres >/dev/null

lab: venv
	scripts/lab up --hosts $(HOSTS)

lab-down: venv
	scripts/lab down

# CISA's KEV catalog, when a copy sits beside the checkout: the sync flags the KEV CVEs.
KEV_CATALOG ?= $(wildcard ../shared/data/kev/known_exploited_vulnerabilities.json)

demo: lab
	milepost maintain --check >/dev/null
	milepost advisory sync $(if $(KEV_CATALOG),--kev $(KEV_CATALOG))
	milepost exposure
	milepost maintain
	milepost exposure
	milepost report dashboard --out .milepost/dashboard

lint: venv
	yamllint -s .
	# The lab inventory ansible.cfg names exists only once `make lab` wrote it; syntax checks
	# need no inventory, so here an unparsed one is not fatal.
	ANSIBLE_INVENTORY_UNPARSED_FAILED=False ansible-lint
	ruff check .
	ruff format --check .
	mypy
	lint-imports --no-cache --no-logo
	bandit -q -r milepost -c pyproject.toml
	ansible-builder create -f execution-environment.yml --context .milepost/ee-context >/dev/null

unit: venv
	pytest -q tests/unit

# Every ledger test runs against SQLite and a real PostgreSQL (Debian's, on 127.0.0.1).
ledger-tests: venv postgres
	pytest -q tests/ledger

integration: lab
	pytest -q --durations=10 tests/integration

# The same in two parts for `make test`: the tests that share the fleet (beside lint, unit
# and molecule), then the one that takes the whole lab down and up again.
DOWN_UP = tests/integration/test_zz_lab_down_up.py
integration-fleet: lab
	pytest -q --durations=25 --ignore=$(DOWN_UP) tests/integration

integration-down-up: lab
	pytest -q $(DOWN_UP)

molecule: lab
	@for s in $(SCENARIOS); do echo "== molecule test -s $$s"; molecule test -s $$s; done

# The reliability proving ground (tests/reliability, see tests/reliability/proving.py): every
# trial it promises (200 kills, 100 races, ...), then its table. A seeded subset of the same
# trials runs in `make test`.
reliability: lab postgres
	MILEPOST_RELIABILITY=full pytest -q tests/reliability

reliability-fast: lab postgres
	pytest -q tests/reliability

# The same subset in two parts for `make test`: the trials that need no lab fleet (beside
# molecule), then those marked `lab`.
reliability-fast-nolab: postgres
	pytest -q -m "not lab" tests/reliability

reliability-fast-lab: lab postgres
	pytest -q -m lab tests/reliability

# What every test stage needs: the apt packages, the venv, PostgreSQL.
setup: venv postgres

# Two lanes: lint, unit, ledger-tests, the reliability trials without the lab and the
# molecule scenarios in one; lab, integration and the reliability trials on the fleet in the
# other; then the lab's down-and-up test. Each stage's time at the end: scripts/test-stages.
test:
	@MAKE="$(MAKE)" scripts/test-stages

# Benchmarks print ratios measured side by side; they are not tests. `make bench` runs every
# one in turn (about 4 hours here before bench-cycle); each also has a target of its own. 20
# lab hosts, then 50 for the scale benchmark, then 6 and 20 for the cycle against a baseline.
# Figures and how they were taken: bench/RESULTS.md.
BENCHES = bench-ledger bench-queries bench-efficiency bench-mitogen bench-emergency \
	bench-drift bench-tuning bench-scale bench-cycle bench-cli
.PHONY: bench bench-deps $(BENCHES)

bench: $(BENCHES)

bench-deps: venv postgres
	pip install -q --disable-pip-version-check --require-hashes -r bench/requirements.txt

bench-ledger: bench-deps
	scripts/lab up --hosts 20
	python bench/ledger_overhead.py

bench-queries: bench-deps
	python bench/ledger_queries.py

bench-efficiency: bench-deps
	scripts/lab up --hosts 20
	python bench/efficiency.py

bench-mitogen: bench-deps
	scripts/lab up --hosts 20
	python bench/mitogen_strategy.py

bench-emergency: bench-deps
	scripts/lab up --hosts 20
	python bench/emergency_patch.py --scenario one-package
	python bench/emergency_patch.py --scenario every-host

bench-drift: bench-deps
	scripts/lab up --hosts 20
	python bench/drift_vs_converge.py

bench-tuning: bench-deps
	scripts/lab up --hosts 20
	python bench/maintain_tuning.py

bench-scale: bench-deps
	scripts/lab up --hosts 50
	python bench/scale.py

# This checkout against a baseline commit (a git worktree in .milepost/bench-baseline): the
# script brings the lab to 6, then 20 hosts itself.
bench-cycle: bench-deps
	python bench/cycle.py

# CLI start-up against its targets (no lab): bench/cli_startup.py.
bench-cli: venv
	python bench/cli_startup.py

# docs/cli.md, the CLI reference, from the command's own definition (a unit test compares).
cli-reference: venv
	python -m milepost.cli.reference > docs/cli.md

requirements:
	$(BIN)/pip install -q pip-tools
	$(BIN)/pip-compile -q --generate-hashes --allow-unsafe --strip-extras \
	  --no-emit-index-url --no-emit-find-links -o requirements.txt requirements.in
	cd bench && $(BIN)/pip-compile -q --generate-hashes --allow-unsafe \
	  --no-emit-index-url --no-emit-find-links -o requirements.txt requirements.in

clean:
	-scripts/lab down
	rm -rf $(VENV) .milepost
