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
# A reproducible PDF: pdfTeX takes its dates and the trailer /ID from SOURCE_DATE_EPOCH when
# FORCE_SOURCE_DATE=1; the commit's time, so one commit builds one byte-identical PDF.
SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"
export SOURCE_DATE_EPOCH FORCE_SOURCE_DATE=1
# Refuse, naming them, macros the sources use that the pipeline did not generate, and numbers
# typed by hand into the main text (rose.paper.check_sources).
python -m rose.paper paper
cd paper
latexmk -pdf -interaction=nonstopmode -halt-on-error -file-line-error main.tex
