"""A real one-node SLURM cluster (Debian's slurmctld, slurmd and munge, started by the test as
root): the tiny DAG through the slurm profile exactly as the README's cluster command runs it,
jobs submitted with the profile's partition, CPUs and memory (read from ``scontrol show job``:
accounting is off), outputs equal to a local run, and a job cancelled mid-run (``scancel``)
that Snakemake resubmits (the profile's ``retries``) and that finishes. Skipped, with the
reason, where the daemons cannot be started (not root, or the packages are not installed:
``make slurm`` installs them)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from .conftest import copy_repo, sh
from .test_profiles import readme_cluster_command

pytestmark = pytest.mark.workflow

DAEMONS = ("slurmctld", "slurmd", "munged", "sbatch", "squeue", "scontrol", "scancel")
PARTITION = "rosetest"
# what the executor needs on a cluster without accounting (the README says so)
NO_ACCOUNTING = ["--slurm-no-account", "--slurm-status-command", "squeue",
                 "--slurm-init-seconds-before-status-checks", "1"]


def _which(name: str) -> str | None:
    return shutil.which(name) or next((str(p) for p in (Path("/usr/sbin") / name,
                                                         Path("/usr/bin") / name)
                                       if p.exists()), None)


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "the SLURM daemons need root"
    missing = [d for d in DAEMONS if _which(d) is None]
    if missing:
        return f"not installed: {', '.join(missing)} (`make slurm` installs them as root)"
    if not Path("/etc/munge/munge.key").exists():
        return "no /etc/munge/munge.key (installed with the munge package)"
    if SYSTEM_CONF.exists() and MARKER not in SYSTEM_CONF.read_text():
        return f"{SYSTEM_CONF} exists: a real cluster's configuration is not replaced"
    return None


SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
MARKER = "# rose test cluster (tests/workflow/test_slurm.py); removed after the test"


def _conf(d: Path, host: str) -> str:
    return f"""{MARKER}
ClusterName=rosetest
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MpiDefault=none
MinJobAge=3600
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName={host} CPUs={os.cpu_count()} RealMemory=16000 State=UNKNOWN
PartitionName={PARTITION} Nodes=ALL Default=NO MaxTime=INFINITE State=UP
"""


def _kill(pidfile: Path) -> None:
    try:
        os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)
    except (FileNotFoundError, ProcessLookupError, ValueError):
        pass


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A running one-node cluster; yields the environment its clients need. Stops what it
    started."""
    why = _why_not()
    if why:
        print(f"SLURM test skipped: {why}")
        pytest.skip(why)
    d = tmp_path_factory.mktemp("slurm")
    for sub in ("state", "spool"):
        (d / sub).mkdir()
    host = socket.gethostname().split(".")[0]
    # the default location: the jobs' own srun (Snakemake's job step) reads it there, as on
    # a real cluster (SLURM_CONF does not reach inside the executor's jobs)
    SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
    SYSTEM_CONF.write_text(_conf(d, host))
    env = dict(os.environ)
    started_munge = subprocess.run(["pgrep", "-x", "munged"], capture_output=True).returncode
    if started_munge:
        for p in ("/run/munge", "/var/log/munge", "/var/lib/munge"):
            Path(p).mkdir(parents=True, exist_ok=True)
            shutil.chown(p, "munge", "munge")
        subprocess.run(["su", "-s", "/bin/sh", "munge", "-c", _which("munged")], check=True)
    subprocess.run([_which("slurmctld")], env=env, check=True)
    subprocess.run([_which("slurmd")], env=env, check=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            r = subprocess.run(["sinfo", "-h", "-o", "%t", "-p", PARTITION], env=env,
                               capture_output=True, text=True)
            if r.returncode == 0 and r.stdout.strip() == "idle":
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"the cluster did not come up: {r.stdout}{r.stderr}\n"
                                     + (d / "slurmctld.log").read_text()[-2000:]
                                     if (d / "slurmctld.log").exists() else "")
            time.sleep(0.5)
        yield env
    finally:
        subprocess.run(["scancel", "-u", "root"], env=env, capture_output=True)
        _kill(d / "slurmd.pid")
        _kill(d / "slurmctld.pid")
        if started_munge:
            subprocess.run(["pkill", "-x", "munged"], capture_output=True)
        SYSTEM_CONF.unlink(missing_ok=True)


def _slurm_repo(tmp_path: Path, env: dict) -> Path:
    repo = copy_repo(tmp_path / "repo", env)
    profile = repo / "workflow/profiles/slurm/config.yaml"
    profile.write_text(profile.read_text().replace('slurm_partition: ""',
                                                   f'slurm_partition: "{PARTITION}"'))
    return repo


def _cluster_command(target: str) -> list[str]:
    """The README's cluster command on the tiny config, target first (it precedes
    --configfile, which takes every word after it)."""
    cmd = readme_cluster_command()
    cmd[cmd.index("--configfile") + 1] = "config/tiny.yaml"
    return [cmd[0], target, *cmd[1:], *NO_ACCOUNTING]


def _jobs(env: dict) -> list[dict[str, str]]:
    """Every job the controller remembers, as key=value fields of `scontrol show job`."""
    out = subprocess.run(["scontrol", "show", "job", "--oneliner"], env=env, text=True,
                         capture_output=True).stdout
    return [dict(re.findall(r"(\S+?)=(\S*)", line)) for line in out.splitlines()
            if line.startswith("JobId=")]


def test_the_tiny_dag_on_slurm_matches_a_local_run(cluster, tmp_path, tool_env, built):
    env = tool_env
    repo = _slurm_repo(tmp_path, env)
    before = {j["JobId"] for j in _jobs(env)}
    sh(_cluster_command("all"), repo, env)
    jobs = [j for j in _jobs(env) if j["JobId"] not in before]
    assert len(jobs) >= 10, jobs
    for j in jobs:
        assert j["Partition"] == PARTITION and j["JobState"] == "COMPLETED", j
        assert int(j["NumCPUs"]) >= 1 and re.search(r"mem=\d+", j["TRES"]), j
    by_cpus = {j["NumCPUs"] for j in jobs}
    assert "2" in by_cpus       # train_baseline's cpus_per_task from the profile
    # the same numbers as the local run (wall-clock columns aside)
    for csv in ("results/tiny/continual/runs.csv", "results/tiny/explore/runs.csv",
                "results/tiny/active/al_runs.csv", "results/tiny/superposition/shortcut_runs.csv",
                "results/tiny/baseline/runs.csv"):
        a, b = pd.read_csv(built / csv), pd.read_csv(repo / csv)
        assert list(a.columns) == list(b.columns), csv
        num = [c for c in a.select_dtypes("number").columns
               if not re.search(r"seconds|_s$|time", c)]
        np.testing.assert_allclose(a[num].to_numpy(float), b[num].to_numpy(float),
                                   rtol=1e-5, atol=1e-6, err_msg=csv)
    assert (repo / "paper/tiny/main.pdf").stat().st_size > 10_000


def test_a_cancelled_job_is_resubmitted_and_resumes(cluster, tmp_path, tool_env):
    """The stream job (4x the tiny stream, so it runs long enough to be caught) is cancelled
    once it has saved a checkpoint (every second here); the retry resumes from it (its log says
    so) and finishes. That a resumed job's outputs equal an uninterrupted run's is tested per
    direction with SIGKILL (tests/test_resume.py)."""
    env = tool_env
    repo = _slurm_repo(tmp_path, env)
    cfg = yaml.safe_load((repo / "config/tiny.yaml").read_text())
    cfg["checkpoint_seconds"] = 1
    cfg["continual"]["samples_per_task"] *= 4       # a longer job: a wider window to cancel in
    (repo / "config/tiny.yaml").write_text(yaml.safe_dump(cfg))
    target = "results/tiny/continual/split/runs.csv"
    ckpt = repo / "results/tiny/continual/split/resume.ckpt"
    log = (tmp_path / "snakemake.log").open("w")
    proc = subprocess.Popen(_cluster_command(target), cwd=repo, env=env, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    cancelled = None
    deadline = time.monotonic() + 600
    while cancelled is None and proc.poll() is None and time.monotonic() < deadline:
        for j in _jobs(env):      # the stream job, once it has saved a checkpoint
            if j.get("JobState") == "RUNNING" and "continual_stream" in j.get("Comment", "") \
                    + j.get("JobName", "") and ckpt.exists():
                subprocess.run(["scancel", j["JobId"]], env=env, check=True)
                cancelled = j["JobId"]
                break
        time.sleep(0.2)
    code = proc.wait(timeout=900)
    log.close()
    text = (tmp_path / "snakemake.log").read_text()
    assert cancelled, "no running continual_stream job was seen to cancel\n" + text[-3000:]
    assert code == 0, text[-3000:]
    states = {j["JobId"]: j["JobState"] for j in _jobs(env)
              if "continual_stream" in j.get("Comment", "") + j.get("JobName", "")}
    assert states[cancelled] == "CANCELLED" and "COMPLETED" in states.values(), states
    assert (repo / target).exists() and not ckpt.exists()
    assert "[rose] resuming from" in (repo / "logs/tiny/continual/split/run.log").read_text()
    assert len(pd.read_csv(repo / target)) > 0


def test_a_profile_without_a_partition_fails_at_submission_with_the_schedulers_message(
        cluster, tmp_path, tool_env):
    """This cluster has no default partition (Default=NO): the README's command with the
    profile's empty ``slurm_partition`` must stop with sbatch's own message, not hang."""
    repo = copy_repo(tmp_path / "repo", tool_env)        # the profile as shipped
    cmd = _cluster_command("data/processed/tiny/digits.npz")
    try:
        r = subprocess.run(cmd, cwd=repo, env=tool_env, text=True, capture_output=True,
                           stdin=subprocess.DEVNULL, timeout=300)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"no failure within 300 s: {e.stdout!s:.3000}") from None
    text = r.stdout + r.stderr
    assert r.returncode != 0, text[-3000:]
    assert "sbatch" in text and "partition" in text.lower(), text[-3000:]
    assert not (repo / "data/processed/tiny/digits.npz").exists()


def _seconds(runtime: str) -> int:
    """scontrol's RunTime ([days-]hh:mm:ss) in seconds."""
    days, _, hms = runtime.rpartition("-")
    h, m, s = (int(x) for x in hms.split(":"))
    return (int(days) if days else 0) * 86400 + h * 3600 + m * 60 + s
