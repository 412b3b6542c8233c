import numpy as np
import pandas as pd
import pytest

from rose.contrasts import check_contrasts, evaluate, sentences

ARMS, METRICS, GROUPS = {"sgd", "sam", "contour"}, {"test_acc"}, {"setting": {"a", "b"}}


def _declared(**over):
    c = {"setting": "a", "arm": "contour", "reference": "sgd", "metric": "test_acc"}
    return [{**c, **over}]


@pytest.mark.parametrize(("over", "key"), [
    ({"arm": "adam"}, r"primary\[0\]\.arm"), ({"reference": "x"}, r"primary\[0\]\.reference"),
    ({"metric": "peak"}, r"primary\[0\]\.metric"), ({"setting": "c"}, r"primary\[0\]\.setting"),
    ({"colour": "red"}, r"primary\[0\]\.colour"), ({"reference": "contour"},
                                                    r"primary\[0\]\.reference"),
])
def test_bad_contrasts_are_refused_naming_the_key(over, key):
    with pytest.raises(ValueError, match=f"config key {key}"):
        check_contrasts(_declared(**over), "primary", ARMS, METRICS, GROUPS)


def test_an_empty_family_is_refused():
    with pytest.raises(ValueError, match="config key primary: a family"):
        check_contrasts([], "primary", ARMS, METRICS, GROUPS)


def test_evaluate_pairs_by_seed_and_holm_adjusts_the_family():
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(6):
        base = rng.normal(0.8, 0.02)
        for setting, shift in (("a", 0.05), ("b", 0.0)):
            rows += [{"setting": setting, "arm": "sgd", "seed": seed, "test_acc": base},
                     {"setting": setting, "arm": "contour", "seed": seed,
                      "test_acc": base + shift + rng.normal(0, 0.005)}]
    runs = pd.DataFrame(rows)
    runs.loc[(runs.arm == "contour") & (runs.seed == 5) & (runs.setting == "b"),
             "test_acc"] = np.nan                                  # a diverged seed
    fam = evaluate(runs, _declared() + _declared(setting="b"))
    assert fam.n.tolist() == [6, 5]
    assert fam.mean_difference[0] == pytest.approx(0.05, abs=0.006)
    assert (fam.p_holm >= fam.p_value).all()
    assert fam.verdict.tolist() == ["above", "not detected"]
    text = sentences(fam, {"test_acc": "test accuracy"})
    assert text[0].startswith("On a, contour is above sgd on test accuracy by +")
    assert "not detected at 5 seeds" in text[1] and "smallest detectable effect" in text[1]
