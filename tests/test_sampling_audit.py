"""Every subset the quick config draws, in every direction, has its population's class (or
group) proportions up to sampling noise (PROTOCOL.md section 1). The draws are made by the same
functions the jobs call, recorded by rose.sampling.record_subsets and checked with
rose.sampling.check_balance (4 binomial standard errors plus one draw of rounding)."""

from __future__ import annotations

import pytest
import yaml
from snakemake.utils import validate

from rose.data.splits import prepare_to_files
from rose.sampling import check_balance, record_subsets

from .conftest import ROOT

EXPECTED = {  # the kinds of subset each direction draws (names given to rose.sampling)
    "data": {"data.split.test", "data.split.val", "data.split.train"},
    "explore": {"explore.probe.probe", "explore.probe.walk"},
    "continual": {"continual.split.test", "continual.task_samples", "continual.evaluation",
                  "continual.validation_split.eval", "continual.validation_split.train"},
    "active": {"active.split.pool", "active.split.test", "active.split.val",
               "active.split.holdout", "active.initial_labels"},
    "superposition": {"superposition.shortcut.split.test", "superposition.shortcut.val.val",
                      "superposition.shortcut.environments.env0"},
}


@pytest.fixture(scope="module")
def quick() -> dict:
    cfg = yaml.safe_load((ROOT / "config/quick.yaml").read_text())
    validate(cfg, str(ROOT / "workflow/schemas/config.schema.yaml"))
    return cfg


@pytest.fixture(scope="module")
def prepared(quick, tmp_path_factory):
    out = tmp_path_factory.mktemp("processed")
    with record_subsets() as rec:
        for name in quick["data"]["datasets"]:
            prepare_to_files(name, quick["data"], out / f"{name}.npz",
                             out / f"{name}.manifest.json")
    return out, rec


def _draws(direction: str, cfg: dict, data_dir) -> list:
    seeds = cfg["seeds"]
    with record_subsets() as rec:
        if direction == "explore":
            from rose.explore.experiments import load_setting
            for setting in [*cfg["explore"]["settings"], "ablation"]:
                load_setting(cfg["explore"], setting, seeds, data_dir)
        elif direction == "continual":
            from rose.continual.experiments import streams_for
            from rose.continual.learner import evaluation_sets
            block = cfg["continual"]
            for stream in block["streams"]:
                for role in ("test", "validation"):
                    evaluation_sets(streams_for(block, stream, seeds, role),
                                    block["test_per_task"], seeds, "cpu")
        elif direction == "active":
            from rose.active.experiments import group_splits
            from rose.active.loop import initial_labels
            for bench in cfg["active"]["benchmarks"]:
                initial_labels(group_splits(cfg["active"], bench, seeds), cfg["active"]["loop"],
                               seeds)
        elif direction == "superposition":
            from rose.data.bundled import load_mnist5k
            from rose.superposition.shortcut import make_splits
            X, digits = load_mnist5k()
            for bench in cfg["superposition"]["shortcut"]["benchmarks"]:
                for s in seeds:
                    make_splits(X, digits, bench, s)
    return rec


@pytest.mark.parametrize("direction", ["data", "explore", "continual", "active",
                                       "superposition"])
def test_every_subset_of_the_quick_config_is_balanced(direction, quick, prepared):
    data_dir, data_records = prepared
    rec = data_records if direction == "data" else _draws(direction, quick, data_dir)
    names = {r.name for r in rec}
    assert EXPECTED[direction] <= names, f"missing draws: {EXPECTED[direction] - names}"
    worst = max(rec, key=lambda r: check_balance(r)[1])
    ok, ratio = check_balance(worst)
    assert ok, (f"{worst.name}: n = {worst.n}, class shares off by {ratio:.1f}x the "
                "sampling-noise bound")
