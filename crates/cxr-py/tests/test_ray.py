"""`cxr.ray.score` on a real two-node Ray cluster (a head and a worker node, separate raylet
processes on this machine) over a few hundred real X-rays and two broken files: the Parquet
output must equal `cxr score`'s CSV row for row, and losing the worker node mid-run must lose
or repeat nothing. The cluster is torn down (`ray stop --force`) whatever happens."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import cxr
from conftest import REPO, dataset_images

ray = pytest.importorskip("ray")
pq = pytest.importorskip("pyarrow.parquet")
import cxr.ray  # noqa: E402  (after the skip: needs ray)

RAY = str(Path(sys.executable).with_name("ray"))
NODE_OPTIONS = ["--num-cpus", "1", "--object-store-memory", "200000000", "--disable-usage-stats"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    """A head node and one worker node. The worker node runs in its own process group (`ray
    start --block`), so the test can kill exactly that node: its raylet and its workers."""
    port = free_port()
    env = dict(os.environ, RAY_ADDRESS="")
    subprocess.run([RAY, "stop", "--force"], capture_output=True, env=env)
    worker = None
    try:
        subprocess.run([RAY, "start", "--head", "--port", str(port), "--node-ip-address", "127.0.0.1", "--include-dashboard", "false", *NODE_OPTIONS], check=True, capture_output=True, env=env)
        address = f"127.0.0.1:{port}"
        worker = subprocess.Popen(
            [RAY, "start", "--address", address, "--node-ip-address", "127.0.0.1", "--block", *NODE_OPTIONS],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
        )
        ray.init(address=address)
        deadline = time.monotonic() + 120
        while len([n for n in ray.nodes() if n["Alive"]]) < 2:
            assert time.monotonic() < deadline, "the worker node did not join"
            assert worker.poll() is None, "the worker node exited"
            time.sleep(0.5)
        yield {"address": address, "worker": worker}
    finally:
        ray.shutdown()
        if worker is not None and worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        subprocess.run([RAY, "stop", "--force"], capture_output=True, env=env)


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """300 real X-rays of four sources, a 0-byte `.png` and a truncated JPEG, in one folder tree."""
    root = tmp_path_factory.mktemp("archive")
    groups = {
        "covid": dataset_images("covid19-radiography/COVID/*.jpg", 100),
        "normal": dataset_images("covid19-radiography/Normal/*.jpg", 100),
        "nih": dataset_images("nih-chestxray14-sample/No_findings/*.jpg", 50),
        "hannover": dataset_images("hannover-covid/png/*.png", 50),
    }
    for group, files in groups.items():
        (root / group).mkdir()
        for f in files:
            shutil.copyfile(f, root / group / f.name)
    (root / "broken").mkdir()
    (root / "broken" / "empty.png").write_bytes(b"")
    jpeg = groups["normal"][0].read_bytes()
    (root / "broken" / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    return root


@pytest.fixture(scope="module")
def cli_scores(archive, cli, tmp_path_factory) -> dict:
    """`cxr score`'s CSV for the archive, by path."""
    out = tmp_path_factory.mktemp("cli") / "scores.csv"
    run = subprocess.run([str(cli), "score", str(archive), "--out", str(out)], capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 1, run.stderr  # exit 1: the two broken files
    with open(out, newline="") as f:
        return {row["path"]: row for row in csv.DictReader(f)}


def assert_equals_cli(output: Path, cli_scores: dict) -> None:
    """Every CSV row once in the Parquet file, probabilities printed as the CSV prints them
    (`{:.6}` of the same float32), same class, model and error."""
    table = pq.read_table(output)
    rows = table.to_pylist()
    assert table.column_names == list(next(iter(cli_scores.values())).keys())
    assert sorted(r["path"] for r in rows) == sorted(cli_scores)
    probability_columns = [c for c in table.column_names if c.startswith("p_")]
    for row in rows:
        theirs = cli_scores[row["path"]]
        for column in probability_columns:
            value = row[column]
            assert ("" if value is None else format(np.float32(value), ".6f")) == theirs[column], (row["path"], column)
        assert (row["class"] or "") == theirs["class"]
        assert row["model_sha256"] == theirs["model_sha256"]
        assert (row["error"] or "") == theirs["error"]
    errors = {Path(r["path"]).name for r in rows if r["error"]}
    assert errors == {"empty.png", "truncated.jpg"}


def test_score_equals_cli_csv_with_error_rows(cluster, archive, cli_scores, tmp_path):
    output = tmp_path / "scores.parquet"
    summary = cxr.ray.score(archive, model="default", output=output, batch_size=16)
    assert summary == {"output": str(output), "images": 302, "errors": 2}
    assert_equals_cli(output, cli_scores)


def scoring_actors_under(root_pid: int) -> list:
    """Pids of the scoring actors that descend from `root_pid` (the worker node's `ray start`):
    Ray titles an actor's process after its class, and each node's raylet starts its own."""
    parents = {}
    titles = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                titles[int(entry)] = f.read().decode(errors="replace")
        except OSError:
            continue

    def descends(pid: int) -> bool:
        while pid > 1:
            if pid == root_pid:
                return True
            pid = parents.get(pid, 0)
        return False

    return [pid for pid, title in titles.items() if "_Scorer" in title and descends(pid)]


def test_losing_the_worker_node_mid_run_loses_and_repeats_nothing(cluster, archive, cli_scores, tmp_path):
    output = tmp_path / "scores.parquet"
    worker = cluster["worker"]
    worker_node = next(n["NodeID"] for n in ray.nodes() if n["Alive"] and not n["Resources"].get("node:__internal_head__"))
    killed = {}

    def kill_worker_node_once_it_scores():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not done.is_set():
            if scoring_actors_under(worker.pid):
                time.sleep(1)  # let it take batches, then take the node away mid-run
                os.killpg(worker.pid, signal.SIGKILL)
                killed["at"] = time.monotonic()
                return
            time.sleep(0.1)

    done = threading.Event()
    killer = threading.Thread(target=kill_worker_node_once_it_scores)
    killer.start()
    try:
        # Two one-CPU actors on two one-CPU nodes, so one runs on the worker node; once it is
        # lost there is no free CPU to restart it on, and the head's actor must take its batches.
        summary = cxr.ray.score(archive, model="default", output=output, batch_size=4, concurrency=2)
    finally:
        finished = time.monotonic()
        done.set()
        killer.join()
    assert "at" in killed, "no scoring actor ever ran on the worker node"
    print(f"worker node killed {finished - killed['at']:.1f} s before the job finished")
    assert killed["at"] < finished, "the job ended before the worker node was lost"
    assert worker.wait(timeout=30) is not None
    deadline = time.monotonic() + 60
    while any(n["Alive"] for n in ray.nodes() if n["NodeID"] == worker_node):
        assert time.monotonic() < deadline, "Ray still counts the killed node as alive"
        time.sleep(0.5)
    assert summary["images"] == 302 and summary["errors"] == 2
    assert_equals_cli(output, cli_scores)
