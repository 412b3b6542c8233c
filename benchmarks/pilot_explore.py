"""The pilot of direction 1's power plan (issue 28): five seeds (100-104, apart from the paper's)
of SGD, SAM, the contour arm and its random-tangent walk, each at one fixed point (the middle of
its paper grid: no tuning), on the paper config's standard-batch setting. Writes
benchmarks/pilot/explore/runs.csv, where SGD's rows stand for the pool sgd_or_warmup and SAM's
for sam_or_swa, so that

    rose plan --power config/paper.yaml --pilot benchmarks/pilot

reads the paired sd of every primary contrast of direction 1. Run from the repository root:
    python benchmarks/pilot_explore.py          (about 8 minutes on one core)
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import pandas as pd
import yaml

from rose.explore.experiments import ABLATION, setting_run

ROOT = Path(__file__).resolve().parent.parent
SEEDS = [100, 101, 102, 103, 104]
SETTING = "fashion_standard"
AS_POOL = {"sgd": "sgd_or_warmup", "sam": "sam_or_swa"}


def pilot_block() -> dict:
    from snakemake.utils import validate  # the schema's defaults, as the workflow sets

    cfg = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    validate(cfg, str(ROOT / "workflow/schemas/config.schema.yaml"), set_default=True)
    block = copy.deepcopy(cfg["explore"])
    fixed = {"sgd": {"lr": 0.05}, "sam": {"lr": 0.05, "rho": 0.05},
             "contour_eq": {"lr": 0.05, "contour": {**block["arms"]["contour_eq"]["contour"],
                                                     "step_size": 0.01}}}
    for arm, over in fixed.items():
        spec = {k: v for k, v in block["arms"][arm].items() if k != "grid"}
        block["arms"][arm] = {**spec, **over}
    block["settings"] = {SETTING: {**block["settings"][SETTING], "arms": list(fixed),
                                   "grids": {}}}
    block["ablation"]["variants"] = {"random_tangent":
                                     block["ablation"]["variants"]["random_tangent"]}
    block["pools"], block["primary"] = {}, []
    block.pop("tune_seeds", None)
    return block


def main() -> None:
    block = pilot_block()
    data = ROOT / "data/processed/paper"
    out = ROOT / "benchmarks/pilot/explore"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        runs = []
        for st in (SETTING, ABLATION):
            d = Path(tmp) / st
            setting_run(block, st, SEEDS, data, d, threads=1,
                        tuned=Path(tmp) / SETTING / "tuning.csv")
            runs.append(pd.read_csv(d / "runs.csv"))
    runs = pd.concat(runs, ignore_index=True)
    pools = runs[(runs.setting == SETTING) & runs.arm.isin(list(AS_POOL))]
    runs = pd.concat([runs, pools.assign(pool_member=pools.arm,
                                         arm=pools.arm.map(AS_POOL))], ignore_index=True)
    runs.to_csv(out / "runs.csv", index=False)
    print(runs.groupby(["setting", "arm"]).final_test_acc.agg(["mean", "std", "count"]))


if __name__ == "__main__":
    main()
