"""rose: ROBust and Statistically Efficient learning.

The library behind the reproducible artifact: data, models, the one training loop, seed
statistics, figures and generated paper snippets. It never imports Snakemake; the workflow
(``Snakefile``, ``workflow/``) calls into it.
"""

__version__ = "0.1.0"
