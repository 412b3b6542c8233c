# rose: the whole evaluation of the proposal, from raw data to paper/<config name>/main.pdf.
#   snakemake                          # the embedded default, config/quick.yaml
#   snakemake --configfile config/tiny.yaml
#   snakemake figures                  # all figures, no TeX needed
#   snakemake --workflow-profile workflow/profiles/slurm --configfile config/paper.yaml
from snakemake.utils import min_version

min_version("9.0")


# The embedded default. A --configfile on the command line replaces it entirely (Snakemake
# would otherwise deep-merge the two, leaking e.g. quick's methods into tiny).
if not workflow.overwrite_configfiles:

    configfile: "config/quick.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/baseline.smk"
include: "workflow/rules/superposition.smk"
include: "workflow/rules/active.smk"
include: "workflow/rules/continual.smk"
include: "workflow/rules/explore.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/paper.smk"


rule all:
    default_target: True
    input:
        rules.data.input,
        rules.baseline.input,
        rules.superposition.input,
        rules.active.input,
        rules.continual.input,
        rules.explore.input,
        rules.figures.input,
        PDF,
