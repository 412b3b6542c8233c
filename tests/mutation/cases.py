"""The reviewer's cases (issue "Tests that catch a broken method"): each breaks one method with a
one-line change, in a scratch copy of the repository, and runs that direction's fast tests,
which must fail. The last case is the control the reviewer used (the ball's step halved).

    python tests/mutation/cases.py        # part of `make mutation`; exits 1 if a case passes
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXPLORE = ["tests/test_explore.py", "tests/test_explore_mechanisms.py"]
ACTIVE = ["tests/test_active.py", "tests/test_active_mechanisms.py"]
CONTINUAL = ["tests/test_continual.py"]
TOY = ["tests/test_superposition.py", "tests/test_superposition_mechanisms.py"]
# (what is broken, module, the original text, the broken text, the tests that must fail)
CASES = [
    ("the contour walk returns its start point", "src/rose/explore/contour.py",
     "    return chosen, rec", "    return th0, rec", EXPLORE),
    ("online EWC's penalty multiplied by 0", "src/rose/continual/penalties.py",
     "    return lam / 2 * (fisher", "    return 0 * lam / 2 * (fisher", CONTINUAL),
    ("the toy model's activation penalty with its sign flipped",
     "src/rose/superposition/toy_model.py",
     "total = (recon + penalty_weight(", "total = (recon - penalty_weight(", TOY),
    ("train_domain_val keeps the last model", "src/rose/active/learner.py",
     "    if best is not None:\n        theta.copy_(best)",
     "    if best is not None:\n        pass", ACTIVE),
    ("BADGE replaced by random picks", "src/rose/active/acquisitions.py",
     "    chosen = np.unique(badge_seeding(g, k, ctx.rng))",
     "    chosen = ctx.rng.choice(len(g), k, replace=False)", ACTIVE),
    ("adaptive sharpness without its adaptive scaling", "src/rose/measure/sharpness.py",
     "    T = _scale(net, theta, eta)", "    T = torch.ones_like(theta)",
     ["tests/test_explore.py", "tests/test_measure_mechanisms.py"]),
    ("control: the ball's step halved", "src/rose/continual/ball.py",
     "(1 - 1e-4) * radius / d_end", "0.5 * (1 - 1e-4) * radius / d_end", CONTINUAL),
]


def main() -> int:
    missed = 0
    with tempfile.TemporaryDirectory(prefix="rose-cases-") as tmp:
        work = Path(tmp)
        for item in ("src", "tests", "config", "workflow", "pyproject.toml"):
            src = ROOT / item
            if src.is_dir():
                shutil.copytree(src, work / item, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(src, work / item)
        env = {**os.environ, "PYTHONPATH": str(work / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
        for name, path, old, new, tests in CASES:
            file = work / path
            text = file.read_text()
            if text.count(old) != 1:
                print(f"{name}: the original line is not in {path} once; update CASES")
                missed += 1
                continue
            file.write_text(text.replace(old, new))
            cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                   "-m", "not sanity and not workflow", *tests]
            r = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
            file.write_text(text)
            caught = r.returncode == 1
            missed += not caught
            print(f"{'caught    ' if caught else 'NOT CAUGHT'}  {name}", flush=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
