"""rose.power and ``rose plan --power``: seeds for a primary contrast's target, against hand
computations and brute force over rose.stats.detectable_effect."""

import math
from pathlib import Path

import pandas as pd
import pytest
import yaml
from scipy.stats import norm

from rose import cli, power
from rose.contrasts import check_contrasts, evaluate, group_columns, parse
from rose.stats import detectable_effect

ROOT = Path(__file__).resolve().parents[1]


def _brute_force(sd, target, alpha, n_max=400):
    return next((n for n in range(2, n_max + 1)
                 if detectable_effect(sd, n, alpha) <= target), None)


# ------------------------------------------------------------------------------ seeds_needed

def test_seeds_needed_is_the_smallest_n_whose_sde_reaches_the_target():
    # SDE(9) = 1.067 > 1 >= SDE(10) = 0.996 for sd = 1 at alpha = 0.05, 80% power
    assert detectable_effect(1.0, 9) > 1.0 >= detectable_effect(1.0, 10)
    assert power.seeds_needed(1.0, 1.0, 0.05) == 10 == _brute_force(1.0, 1.0, 0.05)
    for sd, target, alpha in [(1.0, 0.5, 0.05), (0.3, 1.0, 0.01), (2.0, 1.5, 0.05 / 4),
                              (1.0, 3.0, 0.05)]:
        assert power.seeds_needed(sd, target, alpha) == _brute_force(sd, target, alpha)
    assert power.seeds_needed(0.0, 1.0) == 2          # no spread: the smallest t-test
    assert power.seeds_needed(1.0, 0.01, n_max=50) is None


@pytest.mark.parametrize(("sd", "target", "alpha"), [(1.0, 0.2, 0.05), (1.0, 0.1, 0.05),
                                                     (2.0, 0.3, 0.0125)])
def test_seeds_needed_at_large_n_matches_the_normal_approximation(sd, target, alpha):
    n = power.seeds_needed(sd, target, alpha, n_max=5000)
    z = norm.ppf(1 - alpha / 2) + norm.ppf(0.8)
    plain = z ** 2 * sd ** 2 / target ** 2
    assert power.normal_approximation(sd, target, alpha) == pytest.approx(plain)
    # the t-test's heavier tails cost about z_{1-a/2}^2 / 2 seeds more than the z-test
    # (Guenther 1981, Am. Stat. 35:243); with that term the approximation is within 1 seed
    guenther = plain + norm.ppf(1 - alpha / 2) ** 2 / 2
    assert abs(n - guenther) <= 1
    assert math.ceil(plain) <= n <= math.ceil(plain) + 3


def test_seeds_needed_refuses_what_it_cannot_plan():
    for sd, target in [(math.nan, 1.0), (-1.0, 1.0), (1.0, 0.0), (1.0, -2.0)]:
        with pytest.raises(ValueError):
            power.seeds_needed(sd, target)


# ------------------------------------------------------------------------------ families

def _declared(targets):
    return [{"setting": "a", "arm": "c", "reference": "s", "metric": "acc", "target": t}
            if t is not None else {"setting": "a", "arm": "c", "reference": "s", "metric": "acc"}
            for t in targets]


def test_plan_family_plans_at_the_holm_level_alpha_over_m():
    # four contrasts: level 0.05 / 4 = 0.0125; sd 1 point (0.01 stored), target 1 point
    pilots = [power.Pilot(8, 0.01, "pilot.csv")] * 4
    plan = power.plan_family("explore", _declared([1.0, 1.0, 1.0, None]), [15, 14, 20, 5],
                             pilots)
    assert plan.level.tolist() == [0.0125] * 4
    assert plan.pilot_sd[0] == pytest.approx(1.0)
    assert plan.seeds_needed[0] == 15 == _brute_force(1.0, 1.0, 0.0125)
    assert power.seeds_needed(1.0, 1.0, 0.05) == 10             # the unadjusted level: fewer
    assert plan.status.tolist() == ["ok", "too few seeds", "ok", "no target"]
    assert plan.sde[1] == pytest.approx(detectable_effect(1.0, 14, 0.0125))
    assert plan.sde[1] > 1.0 >= plan.sde[0]
    assert math.isnan(plan.seeds_needed[3]) and math.isnan(plan.target[3])


def test_plan_family_without_a_pilot_or_beyond_n_max():
    plan = power.plan_family("active", _declared([1.0, None, 0.001, 1.0]), [5, 5, 5, 5],
                             [None, None, power.Pilot(5, 0.05, "p"), power.Pilot(5, 0.0, "p")],
                             n_max=100)
    assert plan.status.tolist() == ["no pilot", "no target", "unreachable", "no spread"]
    assert math.isnan(plan.sde[0])
    power.check_plan(plan[plan.status == "no spread"])    # listed, not checked


def test_check_plan_refuses_naming_the_contrast():
    pilots = [power.Pilot(8, 0.01, "pilot.csv")] * 2
    plan = power.plan_family("explore", _declared([1.0, None]), [5, 5], pilots)
    assert _brute_force(1.0, 1.0, 0.05 / 2) == 13                 # m = 2
    with pytest.raises(ValueError, match=r"explore\.primary\[0\] \(c - s, acc \(a\)\): 5 seeds "
                                         r"give an SDE of 2\.05 points .* the target 1 points "
                                         r"needs 13 seeds"):
        power.check_plan(plan)
    power.check_plan(plan.iloc[1:])                      # "no target" passes


def test_config_seeds_read_the_penalty_study_for_the_toy_contrasts():
    cfg = {"seeds": [0, 1, 2], "superposition": {"penalty": {"seeds": 7}}}
    assert power.config_seeds(cfg, "superposition", {"benchmark": "toy"}) == 7
    assert power.config_seeds(cfg, "superposition", {"benchmark": "irm"}) == 3
    assert power.config_seeds(cfg, "explore", {"setting": "toy"}) == 3


# ------------------------------------------------------------------------------ pilots

DIFFS = [0.01, -0.01, 0.02, 0.0, -0.02]      # sd = sqrt(10e-4 / 4) = 0.0158114 (1.58 points)
SD = math.sqrt(10e-4 / 4)


def _runs(diffs=DIFFS, setting="mnist_noisy"):
    rows = []
    for seed, d in enumerate(diffs):
        base = 0.8 + 0.01 * seed
        rows += [{"setting": setting, "arm": "sgd_or_warmup", "seed": seed,
                  "early_test_acc": base, "final_test_acc": base},
                 {"setting": setting, "arm": "contour_eq", "seed": seed,
                  "early_test_acc": base + d, "final_test_acc": base}]
    return pd.DataFrame(rows)


CONTRAST = {"setting": "mnist_noisy", "arm": "contour_eq", "reference": "sgd_or_warmup",
            "metric": "early_test_acc", "target": 1.0}


def test_pilots_from_the_runs_table_and_from_primary_csv_agree_with_the_hand_sd():
    runs = _runs()
    p = power.pilot_from_runs(runs, CONTRAST, "runs.csv")
    assert (p.n, p.source) == (5, "runs.csv") and p.sd == pytest.approx(SD)
    primary = evaluate(runs, [CONTRAST])
    q = power.pilot_from_primary(primary, CONTRAST, "primary.csv")
    assert q.n == 5 and q.sd == pytest.approx(SD, rel=1e-5)
    assert power.pilot_from_runs(runs, {**CONTRAST, "setting": "other"}, "r") is None
    assert power.pilot_from_runs(runs, {**CONTRAST, "metric": "absent"}, "r") is None
    assert power.pilot_from_primary(primary, {**CONTRAST, "arm": "x"}, "p") is None


# ------------------------------------------------------------------------------ contrasts

def test_target_is_not_a_grouping_column_and_is_carried_in_stored_units():
    (c,) = parse([CONTRAST])
    assert c.where == {"setting": "mnist_noisy"} and c.target == 1.0
    assert c.name == "contour_eq - sgd_or_warmup, early_test_acc (mnist_noisy)"
    plain = {k: v for k, v in CONTRAST.items() if k != "target"}
    fam = evaluate(_runs(), [CONTRAST, {**plain, "metric": "final_test_acc"}])
    assert fam.target[0] == pytest.approx(0.01)                # 1 point of an accuracy
    assert math.isnan(fam.target[1])
    assert "target" not in group_columns(fam)
    assert group_columns(fam) == ["setting"]
    assert fam.columns.get_loc("target") == fam.columns.get_loc("detectable") + 1


def test_check_contrasts_accepts_a_target_and_refuses_a_bad_one():
    arms, metrics = {"contour_eq", "sgd_or_warmup"}, {"early_test_acc"}
    groups = {"setting": {"mnist_noisy"}}
    check_contrasts([CONTRAST], "explore.primary", arms, metrics, groups)
    for bad in (0, -1.0, "1", True, math.inf):
        with pytest.raises(ValueError, match=r"explore\.primary\[0\]\.target"):
            check_contrasts([{**CONTRAST, "target": bad}], "explore.primary", arms, metrics,
                            groups)


# ------------------------------------------------------------------------------ the CLI

def _root(tmp_path):
    """A root with the repository's schema and an empty results/ (the fallback lives here)."""
    root = tmp_path / "root"
    (root / "workflow").mkdir(parents=True)
    (root / "workflow" / "schemas").symlink_to(ROOT / "workflow" / "schemas")
    return root


def _config(tmp_path, targets, seeds=5, name="mine"):
    cfg = yaml.safe_load((ROOT / "config" / "quick.yaml").read_text())
    cfg["name"], cfg["seeds"] = name, list(range(seeds))
    for c, t in zip(cfg["explore"]["primary"], targets, strict=False):
        if t is not None:
            c["target"] = t
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _write_runs(results: Path):
    (results / "explore").mkdir(parents=True)
    _runs().to_csv(results / "explore" / "runs.csv", index=False)


def test_cli_refuses_a_config_whose_seeds_are_too_few_naming_the_contrast(tmp_path, capsys):
    root = _root(tmp_path)
    _write_runs(root / "results" / "mine")
    config = _config(tmp_path, [1.0])
    rc = cli.main(["plan", "--power", str(config), "--root", str(root)])
    out, err = capsys.readouterr()
    need = _brute_force(SD * 100, 1.0, 0.05 / 4)               # explore's family: m = 4
    assert need == 32
    sde = detectable_effect(SD * 100, 5, 0.0125)
    assert rc == 2
    assert ("explore.primary[0] (contour_eq - sgd_or_warmup, early_test_acc (mnist_noisy)): "
            f"5 seeds give an SDE of {sde:.2f} points at the pilot's sd 1.58 (n = 5); the "
            "target 1 points needs 32 seeds") in err
    line = next(s for s in out.splitlines() if s.startswith("explore[0]"))
    assert line.split()[1:10] == ["1.00", "5", "1.58", "0.0125", "32", "5", f"{sde:.2f}",
                                  "too", "few"]
    # contrasts without a target are listed as such (quick declares 24, one has a target)
    assert sum(s.split()[8:10] == ["no", "target"] for s in out.splitlines()) == 23


def test_cli_passes_when_the_seeds_reach_the_target(tmp_path, capsys):
    root = _root(tmp_path)
    results = tmp_path / "pilot"
    _write_runs(results)
    config = _config(tmp_path, [1.0], seeds=32)
    rc = cli.main(["plan", "--power", str(config), "--root", str(root), "--pilot", str(results)])
    out, _ = capsys.readouterr()
    assert rc == 0
    line = next(s for s in out.splitlines() if s.startswith("explore[0]"))
    assert line.split()[1:9] == ["1.00", "5", "1.58", "0.0125", "32", "32",
                                 f"{detectable_effect(SD * 100, 32, 0.0125):.2f}", "ok"]
    assert detectable_effect(SD * 100, 32, 0.0125) <= 1.0 < detectable_effect(SD * 100, 31,
                                                                             0.0125)
    assert f"pilot: {results / 'explore' / 'runs.csv'}" in out
    assert "fallback" not in out


def test_cli_falls_back_to_quick_results_and_says_so(tmp_path, capsys):
    root = _root(tmp_path)
    _write_runs(root / "results" / "quick")                    # nothing under results/mine
    config = _config(tmp_path, [1.0], seeds=32)
    rc = cli.main(["plan", "--power", str(config), "--root", str(root)])
    out, _ = capsys.readouterr()
    assert rc == 0
    assert "fallback: quick results are a different dataset" in out
    assert str(root / "results" / "quick" / "explore" / "runs.csv") in out


def test_cli_reads_primary_csv_where_no_runs_table_exists(tmp_path, capsys):
    root = _root(tmp_path)
    results = root / "results" / "mine"
    (results / "explore").mkdir(parents=True)
    plain = {k: v for k, v in CONTRAST.items() if k != "target"}
    evaluate(_runs(), [plain]).to_csv(results / "explore" / "primary.csv", index=False)
    config = _config(tmp_path, [1.0])
    assert cli.main(["plan", "--power", str(config), "--root", str(root)]) == 2
    out, _ = capsys.readouterr()
    assert f"pilot: {results / 'explore' / 'primary.csv'}" in out


@pytest.mark.parametrize("bad", [0, -1.5, "1"])
def test_the_schema_refuses_a_target_that_is_not_a_positive_number_naming_the_key(bad):
    from snakemake.utils import validate

    cfg = yaml.safe_load((ROOT / "config" / "quick.yaml").read_text())
    cfg["active"]["primary"][1]["target"] = 2.5
    validate(cfg, str(ROOT / "workflow/schemas/config.schema.yaml"))     # a target is optional
    cfg["active"]["primary"][1]["target"] = bad
    with pytest.raises(Exception, match=r"On instance\['active'\]\['primary'\]\[1\]\['target'\]"):
        validate(cfg, str(ROOT / "workflow/schemas/config.schema.yaml"))
