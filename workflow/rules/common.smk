# Config validation (before any job), provenance hashes and helpers shared by the rules.
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from rose import baseline as rose_baseline
from rose.active import experiments as rose_active
from rose.continual import experiments as rose_continual
from rose.explore import experiments as rose_explore
from rose.superposition import experiments as rose_superposition
from rose import layout
from rose.data import images as rose_images
from rose.pipeline import retry_runtime
from rose.config_errors import schema_error_message
from rose.provenance import stable_hash

try:                      # one line naming the key, not the whole failing sub-schema
    validate(config, schema="../schemas/config.schema.yaml")
except WorkflowError as e:
    raise WorkflowError(schema_error_message(e)) from None


def check_datasets_prepared(key, datasets):
    missing = sorted(set(datasets) - set(config["data"]["datasets"]))
    if missing:
        raise WorkflowError(
            f"config key {key}: datasets {missing} are not in data.datasets "
            f"{config['data']['datasets']}; add them there so they are prepared."
        )


check_datasets_prepared("baseline.datasets", config["baseline"]["datasets"])
check_datasets_prepared("explore.settings",
                        sorted({s["dataset"] for s in config["explore"]["settings"].values()}))
for _key, _source in [("continual.dataset", config["continual"]["dataset"]),
                      ("active.dataset", config["active"]["dataset"]),
                      ("superposition.shortcut.dataset",
                       config["superposition"]["shortcut"]["dataset"])]:
    check_datasets_prepared(_key, rose_images.prepared_sources(_source))

try:
    rose_superposition.check_config(config["superposition"])
    rose_active.check_config(config["active"])
    rose_continual.check_config(config["continual"])
    rose_explore.check_config(config["explore"])
except ValueError as e:
    raise WorkflowError(str(e)) from None

CONFIG_HASH = stable_hash(config)
CONFIG_NAME = config["name"]
# Every config's outputs live under its name, beside the other configs' and never over them
# (rose.layout; `snakemake --configfile config/paper.yaml` and the quick default share nothing).
# (each folder with its trailing slash: `f"{RESULTS}baseline/..."`, so no path in a rule starts
# with "/", which `snakemake --lint` would read as absolute)
PROCESSED = layout.processed(CONFIG_NAME) + "/"
RESULTS = layout.results(CONFIG_NAME) + "/"
CHECKPOINTS = layout.checkpoints(CONFIG_NAME) + "/"
FIGURES = layout.figures(CONFIG_NAME) + "/"
GENERATED = layout.generated(CONFIG_NAME) + "/"
PDF = layout.pdf(CONFIG_NAME)
LOGS = layout.logs(CONFIG_NAME) + "/"

try:
    rose_explore.check_walk_budgets(config["explore"], PROCESSED)
except ValueError as e:
    raise WorkflowError(str(e)) from None
SEEDS = config["seeds"]


wildcard_constraints:
    dataset="|".join(config["data"]["datasets"]),
    method="[a-z][a-z0-9_]*",
    seed=r"\d+",


# the shared experiment layer every direction job runs on (editing it reruns every direction)
LAYER_CODE = ["nn/__init__.py", "nn/stacked.py", "nn/activations.py", "nn/optim.py", "models.py",
              "engine.py", "checkpoint.py", "device.py", "divergence.py", "sampling.py"]
# what every aggregation runs: statistics, primary contrasts, tuning
STATS_CODE = ["stats.py", "contrasts.py", "tuning.py"]
DEVICE = config["device"]
# GPUs a training job asks the scheduler for (the slurm executor's `gpu` resource; 0 asks none)
GPU = 1 if DEVICE == "cuda" else 0

CHECKPOINT_SECONDS = config["checkpoint_seconds"]


def rose_code(*modules):
    """The src/rose modules a job runs, listed among its inputs. Editing one reruns the job
    and everything downstream (Snakemake's own code trigger sees only the script file)."""
    return [f"src/rose/{m}" for m in modules]


def data_config_for(wildcards):
    """Only the part of data: that shapes this dataset, so editing another one reruns nothing."""
    d = config["data"]
    cfg = {"split": d["split"], "allow_download": d["allow_download"],
           "download_dir": d.get("download_dir", "data/raw")}
    if wildcards.dataset == "synthetic":
        cfg["synthetic"] = d.get("synthetic", {})
    if wildcards.dataset in ("mnist", "fashion_mnist") and "idx_dir" in d:
        cfg["idx_dir"] = d["idx_dir"]
    return cfg


def baseline_spec(wildcards):
    return rose_baseline.run_spec(config, wildcards.dataset, wildcards.method, wildcards.seed)


def explore_tuned(wildcards):
    """The ablation runs at the point selected for its base arm on its setting."""
    if wildcards.setting != "ablation":
        return []
    return f"{RESULTS}explore/{config['explore']['ablation']['setting']}/tuning.csv"


def explore_dataset(wildcards):
    """The prepared split an explore job trains on (the ablation uses its setting's)."""
    ex = config["explore"]
    name = ex["ablation"]["setting"] if wildcards.setting == "ablation" else wildcards.setting
    return f"{PROCESSED}{ex['settings'][name]['dataset']}.npz"
