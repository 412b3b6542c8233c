"""Is direction 1's paper setting trained to convergence? SGD at the point the paper run selected
(results/paper/explore/fashion_standard/tuning.csv), on the pilot's five seeds (100-104, apart
from the paper's), trained for the paper's epochs and for twice as many under the
same cosine schedule; paired by seed. Writes benchmarks/pilot/explore/convergence.csv. If twice
the epochs moves final test accuracy by more than the primary target (0.25 points), the setting
is not at convergence and the paper says so. Run from the repository root after the paper run:
    python benchmarks/convergence_explore.py        (about 4 minutes on 2 cores)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from rose.explore.experiments import load_setting, make_arm
from rose.explore.trainer import Base, train_arm
from rose.explore.tuned import at_point, selected_point
from rose.nn import StackedNet
from rose.stats import paired_contrast

ROOT = Path(__file__).resolve().parent.parent
SEEDS = [100, 101, 102, 103, 104]
SETTING = "fashion_standard"


def main() -> None:
    torch.set_num_threads(2)
    block = yaml.safe_load((ROOT / "config/paper.yaml").read_text())["explore"]
    block["measure"] = {"probe": 500}
    tuning = pd.read_csv(ROOT / f"results/paper/explore/{SETTING}/tuning.csv")
    point = selected_point(tuning, "sgd")
    arm = at_point(make_arm("sgd", block["arms"]["sgd"]), point)
    data, spec = load_setting(block, SETTING, SEEDS, ROOT / "data/processed/paper")
    net = StackedNet(spec["model"], spec["input_shape"], data.n_classes)
    theta0 = net.init(SEEDS, "cpu")
    rows, final = [], {}
    for factor in (1, 2):
        epochs = block["epochs"] * factor
        base = Base(epochs, block["batch_size"], block["lr"], block["momentum"],
                    schedule=block["schedule"])
        res = train_arm(net, theta0, data, arm, base, SEEDS[0])
        h = pd.DataFrame(res.history)
        last = h[h.step == h.step.max()].sort_values("seed_row")
        final[factor] = last.test_acc.to_numpy()
        for s, r in zip(SEEDS, last.itertuples(), strict=True):
            rows.append({"setting": SETTING, "arm": "sgd", "point": json.dumps(point),
                         "epochs": epochs, "seed": s, "final_test_acc": r.test_acc,
                         "final_train_acc": r.train_acc, "final_train_loss": r.train_loss})
        print(f"{epochs} epochs: test {100 * final[factor].mean():.2f}%, train "
              f"{100 * last.train_acc.mean():.2f}%", flush=True)
    for factor in (2,):
        c = paired_contrast(final[factor], final[1])
        print(f"x{factor} epochs minus x1: {100 * c.mean_difference:+.2f} points "
              f"[{100 * c.ci_low:+.2f}, {100 * c.ci_high:+.2f}] ({c.n} seeds)")
    out = ROOT / "benchmarks/pilot/explore/convergence.csv"
    pd.DataFrame(rows).to_csv(out, index=False)
    print(np.round(pd.DataFrame(rows).groupby("epochs")[["final_test_acc",
                                                          "final_train_acc"]].mean(), 4))


if __name__ == "__main__":
    main()
