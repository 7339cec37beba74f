"""`ray job submit` against a real local head (`ray start --head`), and fault tolerance: a killed
training worker and an aborted-then-resubmitted job both resume from the last checkpoint.

The head runs in its own temp dir with non-default ports and token auth. It is stopped in a
``finally`` by process id — the processes whose command line names this head's temp dir, and their
children — rather than with ``ray stop``, which would stop every Ray instance on the machine
(other sessions' included)."""

from __future__ import annotations

import itertools
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest
from graph_fixtures import REPO, TINY, planted

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent


def _free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def _stop_head(temp_dir: str) -> None:
    """`ray stop` for one head only: its processes are those whose command line names its temp dir."""
    me = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    procs: dict[int, psutil.Process] = {}
    for p in psutil.process_iter(["cmdline"]):
        if p.pid in me or not any(temp_dir in a for a in (p.info["cmdline"] or [])):
            continue
        procs[p.pid] = p
        try:
            for c in p.children(recursive=True):
                if c.pid not in me:
                    procs[c.pid] = c
        except psutil.NoSuchProcess:
            pass
    for p in procs.values():
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(list(procs.values()), timeout=15)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass


@contextmanager
def ray_head():
    temp_dir = tempfile.mkdtemp(prefix="zr", dir="/tmp")  # short: Ray's unix socket paths must fit 107 chars
    gcs, dash, client, node, objm, agent_http, agent_grpc, env_agent, metrics = _free_ports(9)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update({
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}", "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32), "HF_HUB_OFFLINE": "1",
    })
    try:
        subprocess.run([
            str(BIN / "ray"), "start", "--head", "--num-cpus=2", "--dashboard-host=127.0.0.1",
            f"--temp-dir={temp_dir}", "--disable-usage-stats", f"--port={gcs}", f"--dashboard-port={dash}",
            f"--ray-client-server-port={client}", f"--node-manager-port={node}", f"--object-manager-port={objm}",
            f"--dashboard-agent-listen-port={agent_http}", f"--dashboard-agent-grpc-port={agent_grpc}",
            f"--runtime-env-agent-port={env_agent}", f"--metrics-export-port={metrics}",
        ], env=env, check=True, timeout=180, capture_output=True, text=True)
        yield {"address": f"http://127.0.0.1:{dash}", "env": env}
    finally:
        _stop_head(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _submit(head, args: list[str], submission_id: str, wait: bool = True, timeout: int = 900):
    cmd = [str(BIN / "ray"), "job", "submit", "--address", head["address"], "--submission-id", submission_id,
           "--runtime-env", "jobs/runtime_env.yaml", "--working-dir", "."]
    if not wait:
        cmd.append("--no-wait")
    return subprocess.run(cmd + ["--", *args], cwd=REPO, env=head["env"], capture_output=True, text=True, check=False, timeout=timeout)


def _job_status(head, submission_id: str) -> str:
    r = subprocess.run([str(BIN / "ray"), "job", "status", "--address", head["address"], submission_id],
                       env=head["env"], capture_output=True, text=True, check=False, timeout=120)
    text = r.stdout + r.stderr
    m = re.search(r"Status for job '[^']+': (\w+)", text)
    if m:
        return m.group(1)
    for phrase, status in (("was stopped", "STOPPED"), ("succeeded", "SUCCEEDED"), ("failed", "FAILED")):
        if phrase in text:
            return status
    return "UNKNOWN"


def _records(run_dir: Path) -> list[dict]:
    f = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in f.read_text().splitlines()] if f.is_file() else []


def _registered_checkpoints(run_dir: Path) -> int:
    """Checkpoints Ray Train has recorded for the run, which is what a resubmitted job resumes from.
    The metrics line and the checkpoint folder come first: a job stopped between them and this record
    starts over, and the test must not stop it there."""
    for f in (run_dir / "ray").glob("*/checkpoint_manager_snapshot.json"):
        try:
            return len(json.loads(f.read_text())["checkpoint_results"])
        except (OSError, ValueError, KeyError):
            return 0
    return 0


def _wait_for(pred, timeout: float, what: str, poll: float = 0.5):
    t0 = time.time()
    while time.time() - t0 < timeout:
        value = pred()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _train_args(lake: Path, runs: Path, run: str, *extra: str) -> list[str]:
    return ["zipp", "train", "--lake", str(lake), "--run", run, f"paths.runs={runs}", *TINY, *extra]


def test_ray_job_submit_runs_train_and_embed_users(tmp_path):
    planted().write(tmp_path / "lake")
    runs = tmp_path / "runs"
    with ray_head() as head:
        r = _submit(head, _train_args(tmp_path / "lake", runs, "job1", "graph.num_workers=2"), "zipp-train-job1")
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        assert "succeeded" in (r.stdout + r.stderr)
        assert [rec["epoch"] for rec in _records(runs / "job1")] == [1, 2]
        assert (runs / "job1" / "model" / "model.pt").is_file()
        # the same CLI through jobs/entrypoint.py (images without the `zipp` console script)
        r = _submit(head, ["python", "jobs/entrypoint.py", "embed-users", "--run", "job1", "--lake", str(tmp_path / "lake"),
                           f"paths.runs={runs}"], "zipp-embed-job1")
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    from zipp import tables as T
    from zipp.lake import read_arrow

    assert read_arrow(tmp_path / "lake", T.GOLD_USER_EMBEDDINGS).num_rows == 160


def test_killed_worker_and_resubmitted_job_resume_from_the_last_checkpoint(tmp_path):
    # big enough that an epoch takes seconds on 2 busy cores, so there is time to interfere
    planted(n_users=2000, n_subreddits=120, n_communities=6).write(tmp_path / "lake")
    runs = tmp_path / "runs"
    run_dir = runs / "fault"
    epochs = 10
    args = _train_args(tmp_path / "lake", runs, "fault", f"graph.epochs={epochs}", "graph.patience=100", "graph.max_failures=2")
    with ray_head() as head:
        # 1) abort the whole job after its first epoch, then resubmit it
        r = _submit(head, args, "zipp-fault-1", wait=False)
        assert r.returncode == 0, r.stderr[-3000:]
        _wait_for(lambda: len(_records(run_dir)) >= 1 and _registered_checkpoints(run_dir) >= 1, 600,
                  "the first epoch's checkpoint")
        subprocess.run([str(BIN / "ray"), "job", "stop", "--address", head["address"], "zipp-fault-1"],
                       env=head["env"], capture_output=True, text=True, check=False, timeout=120)
        _wait_for(lambda: _job_status(head, "zipp-fault-1") in ("STOPPED", "FAILED", "SUCCEEDED"), 120, "the job to stop")
        assert _job_status(head, "zipp-fault-1") == "STOPPED", "the run finished before it could be aborted"
        done_before = len(_records(run_dir))
        assert done_before < epochs

        r = _submit(head, args, "zipp-fault-2", wait=False)
        assert r.returncode == 0, r.stderr[-3000:]
        first_resumed = _wait_for(
            lambda: next((x for x in _records(run_dir)[done_before:] if x["resumed_from"] is not None), None),
            600, "the resubmitted job's first epoch")

        # 2) kill a training worker process: Ray Train restarts the worker group from the checkpoint
        out = subprocess.run([
            str(BIN / "ray"), "list", "actors", "--address", head["address"], "--filter", "class_name=RayTrainWorker",
            "--filter", "state=ALIVE", "--format", "json",
        ], env=head["env"], capture_output=True, text=True, check=False, timeout=120)
        workers = json.loads(out.stdout)
        assert workers, out.stdout + out.stderr
        os.kill(int(workers[0]["pid"]), signal.SIGKILL)
        _wait_for(lambda: _job_status(head, "zipp-fault-2") in ("SUCCEEDED", "FAILED", "STOPPED"), 900, "the job to end")
        assert _job_status(head, "zipp-fault-2") == "SUCCEEDED"

    recs = _records(run_dir)
    attempts: list[list[dict]] = []
    for x in recs:
        if not attempts or attempts[-1][0]["attempt"] != x["attempt"]:
            attempts.append([])
        attempts[-1].append(x)
    # aborted job, resubmitted job, and the worker group Ray Train restarted after the kill
    assert len(attempts) >= 3, [(a[0]["attempt"], a[0]["resumed_from"], [x["epoch"] for x in a]) for a in attempts]
    assert attempts[0][0]["resumed_from"] is None and attempts[0][0]["epoch"] == 1
    for prev, att in itertools.pairwise(attempts):
        start = att[0]["resumed_from"]
        assert start is not None and start >= 1  # resumed from a checkpoint, never from scratch
        assert att[0]["epoch"] == start + 1  # the epoch counter continues after the checkpoint
        assert start <= prev[-1]["epoch"]  # and that checkpoint is one the previous attempt wrote
        assert [x["epoch"] for x in att] == list(range(start + 1, start + 1 + len(att)))
    assert first_resumed["attempt"] == attempts[1][0]["attempt"]
    assert {x["epoch"] for x in recs} == set(range(1, epochs + 1))  # no epoch skipped
    assert recs[-1]["epoch"] == epochs
    import torch

    art = torch.load(run_dir / "model" / "model.pt", weights_only=False)
    assert art["last_epoch"] == epochs
