# rose: the two commands a newcomer needs are `make reproduce` and `make test`.
SHELL := /bin/bash
VENV  := .venv
BIN   := $(VENV)/bin
TEX_PACKAGES := latexmk texlive-latex-base texlive-latex-recommended texlive-fonts-recommended lmodern
SLURM_PACKAGES := slurmctld slurmd slurm-client munge
FASHION_PACKAGE := dataset-fashion-mnist
FASHION_DIR := /usr/share/datasets/fashion-mnist
export PATH := $(abspath $(BIN)):$(PATH)
export DVC_NO_ANALYTICS := 1

LOCK  := requirements.lock

.PHONY: install check-lock lock tex slurm fashion reproduce run figures test bench mutation lint pull push clean

install: $(VENV)/.installed fashion

# The environment is installed from requirements.lock: every package pinned (made by `make
# lock`), torch as the CPU build torch==2.13.0+cpu (on these machines a wheel on disk; elsewhere
# from https://download.pytorch.org/whl/cpu, see the README), torchvision deliberately absent.
# A lock made from another pyproject.toml stops the install.
$(VENV)/.installed: pyproject.toml $(LOCK)
	@$(MAKE) --no-print-directory check-lock
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps -e ".[dev]"
	touch $@

check-lock:
	@want=$$(sed -n 's/^# pyproject-sha256: //p' $(LOCK)); \
	have=$$(sha256sum pyproject.toml | cut -d' ' -f1); \
	if [ "$$want" != "$$have" ]; then \
		echo "error: $(LOCK) was made from another pyproject.toml (sha256 $${want:-none}, now $$have)." >&2; \
		echo "  Update it with 'make lock' (a fresh resolve of pyproject.toml, torch==2.13.0 first)" >&2; \
		echo "  and commit both files." >&2; \
		exit 2; \
	fi

# A fresh resolve of pyproject.toml in a scratch venv: torch==2.13.0 first (the CPU build here),
# then rose with its dev extra; every installed package pinned, rose itself left out.
lock:
	rm -rf .lock-venv
	python3 -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --upgrade pip
	.lock-venv/bin/pip install --quiet torch==2.13.0
	.lock-venv/bin/pip install --quiet -e ".[dev]"
	{ echo "# rose's locked environment: every package pinned by 'make lock' (pip freeze of a"; \
	  echo "# fresh resolve). Install with 'make install'. torch is the CPU build; elsewhere than"; \
	  echo "# these machines pip finds it with PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu"; \
	  echo "# pyproject-sha256: $$(sha256sum pyproject.toml | cut -d' ' -f1)"; \
	  .lock-venv/bin/pip freeze --exclude-editable | grep -v '^rose[= ]'; } > $(LOCK)
	rm -rf .lock-venv

# TeX for paper/NAME/main.pdf: installed with apt when we are root on Debian/Ubuntu; elsewhere a
# clear message (every figure still builds with `make figures`).
tex:
	@if command -v latexmk >/dev/null 2>&1 && kpsewhich booktabs.sty lmodern.sty >/dev/null 2>&1; then \
		echo "TeX: found latexmk"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "TeX: installing $(TEX_PACKAGES) with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(TEX_PACKAGES) >/dev/null; \
	else \
		echo "warning: no TeX (latexmk) and cannot apt-get it; install $(TEX_PACKAGES) or your"; \
		echo "  platform's TeX Live. Without it paper/NAME/main.pdf fails; 'make figures' still works."; \
	fi

# A one-node SLURM cluster for tests/workflow/test_slurm.py (which starts and stops the daemons
# itself): installed with apt when we are root on Debian/Ubuntu; elsewhere the test is skipped
# with its reason.
slurm:
	@if command -v slurmctld >/dev/null 2>&1 || [ -x /usr/sbin/slurmctld ]; then \
		echo "SLURM: found slurmctld"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "SLURM: installing $(SLURM_PACKAGES) with apt-get"; \
		(DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SLURM_PACKAGES) >/dev/null 2>&1 || \
		 (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SLURM_PACKAGES) >/dev/null)) \
		|| echo "warning: could not install $(SLURM_PACKAGES); the SLURM test will be skipped"; \
	else \
		echo "note: no SLURM and cannot apt-get it; tests/workflow/test_slurm.py will be skipped"; \
	fi

# The full Fashion-MNIST (70,000 images) for rose.data.idx, offline: Debian's package, installed
# with apt when we are root on Debian/Ubuntu; elsewhere a note on the other two ways to get it.
fashion:
	@if [ -f $(FASHION_DIR)/train-images-idx3-ubyte.gz ]; then \
		echo "Fashion-MNIST: found $(FASHION_DIR)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Fashion-MNIST: installing $(FASHION_PACKAGE) with apt-get"; \
		(DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(FASHION_PACKAGE) >/dev/null 2>&1 || \
		 (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(FASHION_PACKAGE) >/dev/null)) \
		|| echo "warning: could not install $(FASHION_PACKAGE); for fashion_mnist set data.idx_dir or data.allow_download"; \
	else \
		echo "note: no $(FASHION_DIR) and cannot apt-get $(FASHION_PACKAGE); for fashion_mnist set"; \
		echo "  data.idx_dir to a folder with the four *-idx?-ubyte(.gz) files, or data.allow_download: true"; \
	fi

# CONFIG names a config of config/ (and of params.yaml for push / pull): quick by default,
# paper for the paper-scale results (`make pull CONFIG=paper` fetches them instead).
CONFIG ?= quick

reproduce: install tex
	snakemake --configfile config/$(CONFIG).yaml

# one target of the DAG under a config, in the argument order Snakemake needs (a target written
# after --configfile is read as a second config file): `make run TARGET=explore CONFIG=paper`
run: install
	snakemake $(TARGET) --configfile config/$(CONFIG).yaml

figures: install
	snakemake figures --configfile config/$(CONFIG).yaml

test: install tex slurm
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
	rose pull --config $(CONFIG)

push: install
	rose push --config $(CONFIG)

clean:
	rm -rf .snakemake .mutation logs/$(CONFIG) results/$(CONFIG) data/processed/$(CONFIG) \
		checkpoints/$(CONFIG) figures/$(CONFIG) paper/generated/$(CONFIG) paper/$(CONFIG) report.html
