#!/usr/bin/env bash
# Build paper/NAME/main.pdf with latexmk from paper/generated/NAME and figures/NAME.
# One argument, the config's name (the paper rule passes it as an argv word through
# workflow/scripts/build_paper.py, never through a shell line; checked against the schema's
# pattern again here). Nothing else from the config reaches here.
set -euo pipefail
name="${1:-}"
if [[ ! "$name" =~ ^[A-Za-z0-9_-]+$ ]]; then
    echo "usage: build_paper.sh NAME (the config's name, e.g. quick or paper; got '$name')" >&2
    exit 2
fi
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
python -m rose.paper paper "$name"
cd paper
# \rosebuild names the config: main.tex reads generated/NAME/ and ../figures/NAME/; the PDF
# and LaTeX's auxiliary files go to paper/NAME/
latexmk -pdf -interaction=nonstopmode -halt-on-error -file-line-error -outdir="$name" \
    -usepretex="\\def\\rosebuild{$name}" main.tex
