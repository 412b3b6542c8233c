"""DVC: push, then in a fresh clone pull restores every artifact and Snakemake plans nothing."""

from __future__ import annotations

import json
import shutil

import pytest

from .conftest import sh

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def pushed(built, tool_env, tmp_path_factory):
    """`rose push` from the built copy (to the embedded default remote, ../rose-dvc-store),
    then dvc.lock committed as the README says."""
    sh(["rose", "push"], built, tool_env)
    sh(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "artifacts"],
       built, tool_env, check=False)
    assert (built.parent / "rose-dvc-store").is_dir()
    return built


def fresh_clone(pushed, tool_env, name):
    dest = pushed.parent / name
    shutil.rmtree(dest, ignore_errors=True)
    sh(["git", "clone", "-q", str(pushed), str(dest)], pushed.parent, tool_env)
    return dest


def test_pull_in_a_fresh_clone_plans_zero_jobs(pushed, tool_env):
    clone = fresh_clone(pushed, tool_env, "clone")
    assert not (clone / "results").exists()
    r = sh(["rose", "pull"], clone, tool_env)
    assert "still plans: none" in r.stdout
    dry = sh(["snakemake", "-n", "--configfile", "config/tiny.yaml"], clone, tool_env)
    assert "Nothing to be done" in dry.stdout + dry.stderr
    # DVC's record holds: the checkpoints stay on the shared remote until asked for, and the
    # prepared data were rebuilt (equal to the record, not in this clone's cache)
    status = json.loads(sh(["dvc", "status", "--json"], clone, tool_env).stdout)
    changed = {p: c for entries in status.values() for e in entries
               for p, c in e.get("changed outs", {}).items()}
    assert changed.pop("checkpoints/tiny/baseline") in ("deleted", "not in cache"), status
    assert changed == {"data/processed/tiny": "not in cache"}, status
    assert all(set(e) == {"changed outs"} for entries in status.values() for e in entries)
    assert not (clone / "checkpoints").exists()
    sh(["rose", "pull", "--checkpoints"], clone, tool_env)
    assert (clone / "checkpoints/tiny/baseline").is_dir()
    assert list((clone / "checkpoints/tiny/baseline").rglob("model.ckpt"))
    for f in ["results/tiny/baseline/runs.csv", "figures/tiny/baseline/learning_curves.pdf",
              "paper/tiny/main.pdf", "data/processed/tiny/mnist5k.npz"]:
        assert (clone / f).read_bytes() == (pushed / f).read_bytes(), f
    metrics = json.loads(sh(["dvc", "metrics", "show", "--json"], clone, tool_env).stdout)
    assert "mnist5k" in json.dumps(metrics)
    plots = sh(["dvc", "plots", "show", "--json"], clone, tool_env)
    assert "test_acc" in plots.stdout
    shown = json.loads(plots.stdout)["data"]
    for d in ("superposition", "active", "continual", "explore"):   # every direction
        assert shown.get(f"results/tiny/{d}/primary.csv"), d
    assert shown.get("results/tiny/explore/sweep.csv")


def test_pull_refuses_a_dirty_work_tree(pushed, tool_env):
    clone = fresh_clone(pushed, tool_env, "dirty")
    with open(clone / "config/tiny.yaml", "a") as f:
        f.write("# local edit\n")
    r = sh(["rose", "pull"], clone, tool_env, check=False)
    assert r.returncode == 2 and "work tree has changes" in r.stderr
    assert not (clone / "results").exists()


def test_pull_refuses_to_touch_when_dvc_status_is_not_clean(pushed, tool_env):
    """Committed code that differs from what made the artifacts: pulled, but not marked fresh."""
    clone = fresh_clone(pushed, tool_env, "stale")
    with open(clone / "src/rose/train.py", "a") as f:
        f.write("\n# a change to the training code\n")
    sh(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "edit"], clone,
       tool_env)
    r = sh(["rose", "pull"], clone, tool_env, check=False)
    assert r.returncode == 2 and "dvc status" in r.stderr
    dry = sh(["snakemake", "-n", "--configfile", "config/tiny.yaml"], clone, tool_env)
    assert "train_baseline" in dry.stdout  # nothing was falsely marked up to date


def test_push_refuses_stale_outputs(pushed, tool_env):
    clone = fresh_clone(pushed, tool_env, "stalepush")
    sh(["rose", "pull"], clone, tool_env)
    cfg = (clone / "config/tiny.yaml").read_text().replace("epochs: 2", "epochs: 3")
    (clone / "config/tiny.yaml").write_text(cfg)
    r = sh(["rose", "push"], clone, tool_env, check=False)
    assert r.returncode == 2 and "refusing to push" in r.stderr


def test_pull_refuses_after_a_schema_default_changes(pushed, tool_env):
    """The schema's defaults feed every run spec, so it is a dependency of every stage: a changed
    default makes the pulled artifacts stale, and `rose pull` must not mark them fresh."""
    clone = fresh_clone(pushed, tool_env, "schema")
    schema = clone / "workflow/schemas/config.schema.yaml"
    text = schema.read_text()
    old = "momentum: {type: number, minimum: 0, exclusiveMaximum: 1, default: 0.0}"
    assert text.count(old) == 1
    schema.write_text(text.replace(old, old.replace("default: 0.0", "default: 0.5")))
    sh(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "default"], clone,
       tool_env)
    r = sh(["rose", "pull"], clone, tool_env, check=False)
    assert r.returncode == 2 and "dvc status" in r.stderr


def test_dvc_repro_runs_each_stage_through_snakemake(pushed, tool_env):
    """`dvc repro` just calls Snakemake: forced, every stage's command runs (Snakemake finds the
    pulled outputs up to date) and DVC's record stays clean."""
    clone = fresh_clone(pushed, tool_env, "repro")
    sh(["rose", "pull", "--checkpoints"], clone, tool_env)   # every out of every stage
    r = sh(["dvc", "repro", "--force"], clone, tool_env)
    assert "snakemake data --configfile config/tiny.yaml" in r.stdout + r.stderr
    assert json.loads(sh(["dvc", "status", "--json"], clone, tool_env).stdout) == {}


def test_pull_without_the_remote_says_so_and_what_to_do(pushed, tool_env, tmp_path):
    """A fresh machine: the relative local remote (../rose-dvc-store) is absent, then empty."""
    dest = tmp_path / "elsewhere" / "clone"
    dest.parent.mkdir()
    sh(["git", "clone", "-q", str(pushed), str(dest)], tmp_path, tool_env)
    r = sh(["rose", "pull"], dest, tool_env, check=False)
    assert r.returncode == 2 and "does not exist on this machine" in r.stderr
    assert "make reproduce" in r.stderr and "dvc remote modify --local" in r.stderr
    (dest.parent / "rose-dvc-store").mkdir()        # where ../../rose-dvc-store points from .dvc/
    r = sh(["rose", "pull"], dest, tool_env, check=False)
    assert r.returncode == 2 and "is empty" in r.stderr
    assert not (dest / "results").exists()


def test_params_diff_names_the_edited_hyperparameter(pushed, tool_env):
    """Each stage's params are the config keys it reads: after an edit of one hyperparameter,
    `dvc params diff` names that key (and `dvc status` the stages that read it)."""
    clone = fresh_clone(pushed, tool_env, "params")
    cfg = clone / "config/tiny.yaml"
    text = cfg.read_text()
    assert "  lr: 0.05\n" in text
    cfg.write_text(text.replace("  lr: 0.05\n", "  lr: 0.07\n", 1))
    diff = json.loads(sh(["dvc", "params", "diff", "--json"], clone, tool_env).stdout)
    changed = {k for f in diff.values() for k in f}
    assert changed, diff
    assert all(k.split(".")[0] in ("explore", "baseline", "superposition", "active",
                                   "continual", "data") for k in changed)
    assert any(k.endswith(".lr") for k in changed), changed


def dvc_outputs(repo) -> list:
    """Every file under the DVC stages' outs (dvc.yaml), relative to ``repo``."""
    import yaml

    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    outs = [(next(iter(o)) if isinstance(o, dict) else o).replace("${key}", "tiny")
            for s in stages.values() for o in s["do"].get("outs", [])]
    return sorted(p.relative_to(repo) for o in outs for p in
                  ([repo / o] if (repo / o).is_file() else (repo / o).rglob("*"))
                  if p.is_file())


def test_a_second_run_at_the_same_commit_is_byte_identical(pushed, tool_env):
    """Timings and build metadata stay out of the DVC-tracked outputs (logs/ holds the logs
    and Snakemake's benchmark files; metrics.json no wall time; the PDF dated by the commit),
    so a rerun of the tiny DAG in a fresh clone at the commit that made ``pushed``'s outputs
    reproduces every tracked file byte for byte, and DVC reports nothing changed."""
    clone = fresh_clone(pushed, tool_env, "rerun")
    root = sh(["git", "rev-list", "--max-parents=0", "HEAD"], clone, tool_env).stdout.strip()
    sh(["git", "checkout", "-q", root], clone, tool_env)      # the commit `built` ran at
    sh(["snakemake", "--configfile", "config/tiny.yaml"], clone, tool_env)
    ours, theirs = dvc_outputs(clone), dvc_outputs(pushed)
    assert ours == theirs and len(ours) > 100
    differ = [str(f) for f in ours if (clone / f).read_bytes() != (pushed / f).read_bytes()]
    assert differ == []
    sh(["git", "checkout", "-q", "main", "--", "dvc.lock"], clone, tool_env)   # push's record
    status = json.loads(sh(["dvc", "status", "--json"], clone, tool_env).stdout)
    # this clone has no DVC cache, so every out is "not in cache"; none may be "modified"
    changed = {stage: e for stage, entries in status.items() for e in entries
               if set(e) != {"changed outs"} or set(e["changed outs"].values()) != {"not in cache"}}
    assert changed == {}
