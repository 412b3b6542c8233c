"""Grids that contain their optimum (PROTOCOL.md section 2): a selection at the edge of a ruled
numeric axis extends the grid one step beyond it, only the new points train, and selection
repeats; checked against hand computations."""

import math

import numpy as np
import pandas as pd
import pytest

from rose import writeup
from rose.tuning import (
    Extension,
    Grid,
    edge_axes,
    parse_extensions,
    tune,
    tune_extending,
    tuning_table,
)

KEY = "tuning.extensions"


class Spy:
    """A training function whose score is ``f(point)`` on every seed; it records each call's
    points."""

    def __init__(self, f, seeds=2, diverged=()):
        self.f, self.seeds, self.diverged, self.calls = f, seeds, diverged, []

    def __call__(self, points, budget):
        self.calls.append([dict(p) for p in points])
        rows = []
        for p in points:
            row = [self.f(p)] * self.seeds
            if p in self.diverged:
                row[-1] = float("nan")
            rows.append(row)
        return np.array(rows)


def peak(**centre):
    """A score peaked at ``centre``: minus the squared distance."""
    return lambda p: -sum((p[k] - c) ** 2 for k, c in centre.items())


LR = [0.01, 0.03, 0.1]


def geometric(**kw):
    return {"lr": Extension("geometric", **{"max_extensions": 2, **kw})}


def test_an_edge_selection_extends_until_interior_and_only_new_points_train():
    # inferred ratio at the high edge 0.1 / 0.03 = 3.3333: 0.1 -> 0.333333 -> 1.11111
    spy = Spy(peak(lr=0.3))
    r = tune_extending(Grid("sgd", {"lr": LR}), 7, spy, geometric(upper=3.0))
    assert spy.calls == [[{"lr": 0.01}, {"lr": 0.03}, {"lr": 0.1}], [{"lr": 0.333333}],
                         [{"lr": 1.11111}]]
    assert r.selected_point == {"lr": 0.333333}
    assert r.selected_score == pytest.approx(-(0.333333 - 0.3) ** 2)
    assert r.extensions == [{"axis": "lr", "side": "high", "value": 0.333333, "round": 1},
                            {"axis": "lr", "side": "high", "value": 1.11111, "round": 2}]
    assert r.at_bound == [] and r.point_rounds == [0, 0, 0, 1, 2] and r.n_trained == 5
    assert r.scores.shape == (5, 2)
    assert r.scores[4, 0] == pytest.approx(-(1.11111 - 0.3) ** 2)     # new scores appended
    assert edge_axes(r.points, r.selected_point) == []


def test_the_low_edge_infers_its_own_ratio():
    # at the low edge the outermost pair is 0.01, 0.03: ratio 3, 0.01 / 3 = 0.00333333
    spy = Spy(peak(lr=0.004))
    r = tune_extending(Grid("sgd", {"lr": LR}), 1, spy, geometric(max_extensions=1))
    assert spy.calls[1:] == [[{"lr": 0.00333333}]] and r.selected_point == {"lr": 0.00333333}
    assert r.at_bound == [{"axis": "lr", "side": "low", "value": 0.00333333,
                           "reason": "max_extensions"}]


def test_the_upper_bound_is_used_once_and_the_selection_left_there_is_listed():
    spy = Spy(peak(lr=0.3))
    r = tune_extending(Grid("sgd", {"lr": LR}), 1, spy, geometric(upper=0.2, max_extensions=3))
    # 0.1 * 3.3333 passes 0.2: the bound itself is added; beyond it nothing
    assert spy.calls[1:] == [[{"lr": 0.2}]] and r.selected_point == {"lr": 0.2}
    assert r.extensions == [{"axis": "lr", "side": "high", "value": 0.2, "round": 1}]
    assert r.at_bound == [{"axis": "lr", "side": "high", "value": 0.2, "reason": "bound"}]
    t = tuning_table([r])
    assert t["round"].tolist() == [0, 0, 0, 1]
    assert t.extended.tolist() == [False, False, False, True]
    assert t.at_edge.tolist() == ["", "", "", "lr:high"]
    assert t.at_bound.tolist() == ["", "", "", "lr:high:bound"]
    assert set(t.grid_size) == {4}


def test_extensions_used_up_are_listed():
    spy = Spy(peak(lr=2.0))
    r = tune_extending(Grid("sgd", {"lr": LR}), 1, spy, geometric(max_extensions=1))
    assert len(spy.calls) == 2 and r.selected_point == {"lr": 0.333333}
    assert r.at_bound == [{"axis": "lr", "side": "high", "value": 0.333333,
                           "reason": "max_extensions"}]


def test_no_extension_allowed_is_plain_tune():
    grid = Grid("sgd", {"lr": LR})
    a, b = Spy(peak(lr=0.3)), Spy(peak(lr=0.3))
    plain = tune(grid, 5, a)
    r = tune_extending(grid, 5, b, geometric(max_extensions=0))
    assert a.calls == b.calls and r.points == plain.points and r.selected == plain.selected
    np.testing.assert_array_equal(r.scores, plain.scores)
    assert r.extensions == [] and r.point_rounds == plain.point_rounds == [0, 0, 0]
    # the selection stays at the edge with no extension allowed, and says so
    assert r.at_bound == [{"axis": "lr", "side": "high", "value": 0.1,
                           "reason": "max_extensions"}]
    pd.testing.assert_frame_equal(tuning_table([r]).drop(columns="at_bound"),
                                  tuning_table([plain]).drop(columns="at_bound"))
    r = tune_extending(grid, 5, Spy(peak(lr=0.3)), {})
    pd.testing.assert_frame_equal(tuning_table([r]), tuning_table([plain]))


def test_an_arithmetic_axis_extends_downward_with_a_declared_step():
    # 0.5 -> 0.35 -> 0.2 (0.19999.. rounded) -> 0.05; peak 0.25 selects 0.2, inside
    spy = Spy(peak(w=0.25))
    rule = {"w": Extension("arithmetic", 3, step=0.15, lower=0.0)}
    r = tune_extending(Grid("l2", {"w": [0.5, 0.7, 0.9]}), 1, spy, rule)
    assert spy.calls[1:] == [[{"w": 0.35}], [{"w": 0.2}], [{"w": 0.05}]]
    assert r.selected_point == {"w": 0.2} and r.at_bound == []


def test_an_arithmetic_axis_stops_at_its_lower_bound():
    # inferred step 0.2: 0.2 -> 0.0 (the bound) -> -0.2 would pass it: stop, listed
    spy = Spy(peak(w=-1.0))
    rule = parse_extensions({"w": {"scale": "arithmetic", "lower": 0, "max_extensions": 5}},
                            KEY)
    r = tune_extending(Grid("l2", {"w": [0.2, 0.4, 0.6]}), 1, spy, rule)
    assert spy.calls[1:] == [[{"w": 0.0}]] and r.selected_point == {"w": 0.0}
    assert r.at_bound == [{"axis": "w", "side": "low", "value": 0.0, "reason": "bound"}]


def test_a_bound_already_on_the_grid_is_not_trained_again():
    spy = Spy(peak(w=-1.0))
    rule = {"w": Extension("arithmetic", 2, lower=0.0)}
    r = tune_extending(Grid("l2", {"w": [0.0, 0.5]}), 1, spy, rule)
    assert len(spy.calls) == 1 and r.extensions == []
    assert r.at_bound == [{"axis": "w", "side": "low", "value": 0.0, "reason": "bound"}]


def test_two_dimensions_extend_only_along_the_ruled_edge_axis():
    # lr ratio 10: 0.1 -> 1.0 -> 10.0; momentum has no rule and stays at its edge 0.9
    f = lambda p: -math.log10(p["lr"] / 0.5) ** 2 - (p["momentum"] - 0.9) ** 2  # noqa: E731
    spy = Spy(f)
    grid = Grid("sgd", {"lr": [0.01, 0.1], "momentum": [0.0, 0.9]})
    r = tune_extending(grid, 1, spy, geometric())
    assert spy.calls[1:] == [[{"lr": 1.0, "momentum": 0.0}, {"lr": 1.0, "momentum": 0.9}],
                             [{"lr": 10.0, "momentum": 0.0}, {"lr": 10.0, "momentum": 0.9}]]
    assert r.selected_point == {"lr": 1.0, "momentum": 0.9}
    assert edge_axes(r.points, r.selected_point) == [("momentum", "high")]
    assert r.at_bound == []                                   # momentum has no rule
    t = tuning_table([r])
    assert t.loc[t.selected, "at_edge"].item() == "momentum:high"


def test_a_corner_extends_both_axes_without_training_a_point_twice():
    spy = Spy(lambda p: -(p["a"] - 3) ** 2 - (p["b"] - 30) ** 2 / 100)
    rules = {"a": Extension("arithmetic", 2), "b": Extension("arithmetic", 2)}
    r = tune_extending(Grid("x", {"a": [1, 2], "b": [10, 20]}), 1, spy, rules)
    assert [len(c) for c in spy.calls] == [4, 2 + 3, 3 + 4]
    assert spy.calls[1] == [{"a": 3, "b": 10}, {"a": 3, "b": 20},
                            {"a": 1, "b": 30}, {"a": 2, "b": 30}, {"a": 3, "b": 30}]
    keys = [(p["a"], p["b"]) for p in r.points]
    assert len(set(keys)) == len(keys) == 16
    assert set(keys) == {(a, b) for a in (1, 2, 3, 4) for b in (10, 20, 30, 40)}
    assert all(type(p["a"]) is int and type(p["b"]) is int for p in r.points)
    assert r.selected_point == {"a": 3, "b": 30}
    assert [e["round"] for e in r.extensions] == [1, 1, 2, 2]


def test_every_arm_runs_the_same_rule_on_its_own_selection():
    rules = geometric()
    low = tune_extending(Grid("sgd", {"lr": LR}), 1, Spy(peak(lr=0.03)), rules)
    high = tune_extending(Grid("sam", {"lr": LR}), 1, Spy(peak(lr=0.3)), rules)
    assert low.n_trained == 3 and low.extensions == []
    assert high.n_trained == 5 and len(high.extensions) == 2
    t = tuning_table([low, high])
    assert t.groupby("arm").grid_size.first().to_dict() == {"sam": 5, "sgd": 3}


def test_edge_axes_by_hand():
    pts = Grid("x", {"lr": [0.3, 0.1], "opt": ["sgd", "adam"], "wd": [0.0]}).points
    assert edge_axes(pts, {"lr": 0.1, "opt": "sgd", "wd": 0.0}) == [("lr", "low")]
    assert edge_axes(pts, {"lr": 0.3, "opt": "adam", "wd": 0.0}) == [("lr", "high")]
    mid = Grid("x", {"lr": [1, 2, 3], "m": [True, False]}).points
    assert edge_axes(mid, {"lr": 2, "m": True}) == []              # booleans are not numbers


def test_a_diverged_edge_point_does_not_pull_the_grid_toward_it():
    spy = Spy(peak(lr=0.3), diverged=[{"lr": 0.1}])
    r = tune_extending(Grid("sgd", {"lr": LR}), 1, spy, geometric())
    assert len(spy.calls) == 1 and r.selected_point == {"lr": 0.03} and r.at_bound == []


def test_an_edge_selection_extends_even_if_the_other_edge_diverged():
    spy = Spy(peak(lr=0.0), diverged=[{"lr": 0.1}])
    r = tune_extending(Grid("sgd", {"lr": LR}), 1, spy, geometric(max_extensions=1))
    assert spy.calls[1:] == [[{"lr": 0.00333333}]] and r.selected_point == {"lr": 0.00333333}


def test_a_diverged_new_point_ends_the_extension():
    spy = Spy(peak(lr=0.3), diverged=[{"lr": 0.333333}])
    r = tune_extending(Grid("sgd", {"lr": LR}), 1, spy, geometric())
    assert len(spy.calls) == 2 and r.selected_point == {"lr": 0.1} and r.at_bound == []
    assert tuning_table([r]).n_diverged.tolist() == [0, 0, 0, 1]


def test_training_must_score_every_new_point_on_every_seed():
    def train(points, budget):
        return np.zeros((len(points), 2 if len(points) == 3 else 3))
    with pytest.raises(ValueError, match="seeds=2"):
        tune_extending(Grid("sgd", {"lr": LR}), 1, train, geometric())


GRIDS = {"sgd": {"lr": [0.01, 0.1], "opt": ["a", "b"], "w": [-1.0, 1.0]}}


@pytest.mark.parametrize(("rule", "key"), [
    ({"lr": {"scale": "log", "max_extensions": 1}}, "lr.scale"),
    ({"lr": {"scale": "geometric"}}, "lr.max_extensions"),
    ({"lr": {"scale": "geometric", "max_extensions": -1}}, "lr.max_extensions"),
    ({"lr": {"scale": "geometric", "max_extensions": True}}, "lr.max_extensions"),
    ({"lr": {"scale": "geometric", "max_extensions": 1.5}}, "lr.max_extensions"),
    ({"lr": {"scale": "geometric", "max_extensions": 1, "lower": 0}}, "lr.lower"),
    ({"lr": {"scale": "geometric", "max_extensions": 1, "upper": -2}}, "lr.upper"),
    ({"lr": {"scale": "geometric", "max_extensions": 1, "step": 1}}, "lr.step"),
    ({"lr": {"scale": "geometric", "max_extensions": 1, "step": 0.5}}, "lr.step"),
    ({"lr": {"scale": "arithmetic", "max_extensions": 1, "step": 0}}, "lr.step"),
    ({"lr": {"scale": "arithmetic", "max_extensions": 1, "step": "big"}}, "lr.step"),
    ({"lr": {"scale": "arithmetic", "max_extensions": 1, "lower": 1, "upper": 1}}, "lr"),
    ({"lr": {"scale": "geometric", "max_extensions": 1, "ratio": 2}}, "lr.ratio"),
    ({"lr": "geometric"}, "lr"),
    ({"mom": {"scale": "arithmetic", "max_extensions": 1}}, "mom"),
    ({"opt": {"scale": "arithmetic", "max_extensions": 1}}, "opt"),
    ({"w": {"scale": "geometric", "max_extensions": 1}}, "w"),
    ({"lr": {"scale": "geometric", "max_extensions": 1, "upper": 0.05}}, "lr"),
])
def test_bad_rules_are_refused_naming_the_key(rule, key):
    with pytest.raises(ValueError, match=f"config key {KEY}.{key}[:. ]"):
        parse_extensions(rule, KEY, GRIDS)


def test_a_good_rule_parses():
    got = parse_extensions({"lr": {"scale": "geometric", "lower": 1e-4, "upper": 3.0,
                                   "max_extensions": 2}}, KEY, GRIDS)
    assert got == {"lr": Extension("geometric", 2, None, 1e-4, 3.0)}
    assert parse_extensions(None, KEY) == {} and parse_extensions({}, KEY, GRIDS) == {}


def test_a_non_numeric_ruled_axis_is_refused_before_training():
    spy = Spy(lambda p: 0.0)
    with pytest.raises(ValueError, match="non-numeric"):
        tune_extending(Grid("sgd", {"opt": ["a", "b"]}), 1, spy,
                       {"opt": Extension("arithmetic", 1)})
    assert spy.calls == []


def test_the_appendix_counts_extensions_and_selections_left_at_a_bound(tmp_path):
    rules = geometric(upper=0.2, max_extensions=3)
    results = [tune_extending(Grid("sgd", {"lr": LR}), 1, Spy(peak(lr=0.3)), rules),
               tune_extending(Grid("sam", {"lr": LR}), 1, Spy(peak(lr=0.03)), rules)]
    tuning_table(results).assign(setting="s").to_csv(tmp_path / "t.csv", index=False)
    table = pd.read_csv(tmp_path / "t.csv")
    tex = writeup.tuning_table("explore", table, "results/explore/tuning.csv")
    assert ("Grid extensions: 1 value added beyond a declared grid's edge; 1 selection left "
            "at a bound: s, sgd: lr high (hard bound).") in tex
    old = table.drop(columns=["round", "extended", "at_edge", "at_bound"])
    assert "Grid extensions" not in writeup.tuning_table("explore", old, "x")
    assert writeup.tuning_table("explore", old, "x").endswith("\\end{longtable}}\n")
