#!/usr/bin/env bash
# Build paper/main.pdf with latexmk. Takes no arguments: nothing from the config reaches here.
set -euo pipefail
if ! command -v latexmk >/dev/null 2>&1; then
    echo "error: latexmk not found, so paper/main.pdf cannot be built." >&2
    echo "  On Debian/Ubuntu as root, 'make tex' installs it (apt-get install latexmk" >&2
    echo "  texlive-latex-recommended texlive-fonts-recommended)." >&2
    echo "  Every figure still builds without TeX: snakemake figures" >&2
    exit 1
fi
cd paper
latexmk -pdf -interaction=nonstopmode -halt-on-error -file-line-error main.tex
