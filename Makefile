# rose: the two commands a newcomer needs are `make reproduce` and `make test`.
SHELL := /bin/bash
VENV  := .venv
BIN   := $(VENV)/bin
TEX_PACKAGES := latexmk texlive-latex-base texlive-latex-recommended texlive-fonts-recommended lmodern
export PATH := $(abspath $(BIN)):$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: install tex reproduce figures test bench mutation lint pull push clean

install: $(VENV)/.installed

# torch first and pinned: on these machines torch==2.13.0 is a CPU wheel on disk, while an
# unpinned torch pulls a multi-GB CUDA build. torchvision is deliberately not installed.
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

# TeX for paper/main.pdf: installed with apt when we are root on Debian/Ubuntu; elsewhere a
# clear message (every figure still builds with `make figures`).
tex:
	@if command -v latexmk >/dev/null 2>&1 && kpsewhich booktabs.sty lmodern.sty >/dev/null 2>&1; then \
		echo "TeX: found latexmk"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "TeX: installing $(TEX_PACKAGES) with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(TEX_PACKAGES) >/dev/null; \
	else \
		echo "warning: no TeX (latexmk) and cannot apt-get it; install $(TEX_PACKAGES) or your"; \
		echo "  platform's TeX Live. Without it paper/main.pdf fails; 'make figures' still works."; \
	fi

reproduce: install tex
	snakemake

figures: install
	snakemake figures

test: install tex
	pytest

bench: install
	python benchmarks/run.py

# mutation testing of the mechanism modules (mutmut): `make mutation`, or one module:
# `make mutation MODULES=src/rose/continual/ball.py`
mutation: install
	python tests/mutation/run.py $(MODULES)
	$(if $(MODULES),,python tests/mutation/cases.py)

# ruff, and `snakemake --lint` allowing only its conda notice (conda is deliberately optional)
lint: install
	pytest -q tests/workflow/test_lint.py

pull: install
	rose pull

push: install
	rose push

clean:
	rm -rf .snakemake .mutation logs results data/processed figures/baseline paper/generated/*.tex \
		paper/main.pdf report.html
