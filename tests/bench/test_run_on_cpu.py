"""`python -m bench`: a run over fixtures writes every report; a killed run resumes without redoing
finished tasks; multirun outputs merge into one comparison table."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from bench.merge import merge
from bench.store import ResultStore

NAMES = ["softmax", "relu_scale_bias", "tanh_gate", "swish_residual"]


def bench_cmd(out, replay, *extra, names=NAMES):
    return [
        sys.executable,
        "-m",
        "bench",
        "suite=fixtures",
        f"suite.names=[{','.join(names)}]",
        "strategy=best_of_n",
        "strategy.n=1",
        "generator=replay",
        f"generator.path={replay}",
        f"out_dir={out}",
        "workers=2",
        *extra,
    ]


@pytest.fixture(scope="module")
def replay(tmp_path_factory):
    from search.fixtures import write_fixture_replay

    path = tmp_path_factory.mktemp("bench_replay") / "r.jsonl"
    write_fixture_replay(path, fragments=False)
    return path


def test_store_survives_a_torn_line(tmp_path):
    store = ResultStore(tmp_path / "results.jsonl")
    store.append({"task_id": "a", "accepted": True})
    with store.path.open("a") as f:
        f.write('{"task_id": "b", "acc')  # killed mid-write
    assert store.done() == {"a"}
    store.append({"task_id": "c", "accepted": False})
    assert [r["task_id"] for r in store.rows()] == ["a", "c"]


def test_killed_run_resumes_and_reports(tmp_path, replay):
    out = tmp_path / "run"
    env = {**os.environ, "WANDB_MODE": "offline"}
    proc = subprocess.Popen(
        bench_cmd(out, replay),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    results = out / "results.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if results.is_file() and len(ResultStore(results).rows()) >= 1:
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # a crash: no cleanup, no report
    proc.wait()
    first = ResultStore(results).rows()
    assert 1 <= len(first) < len(NAMES), "the run should have been killed mid-suite"
    assert not (out / "summary.json").exists()

    done = subprocess.run(
        bench_cmd(out, replay), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{len(first)} already done" in done.stdout
    rows = ResultStore(results).rows()
    assert sorted(r["task_id"] for r in rows) == sorted(f"fixtures/{n}" for n in NAMES)
    assert [r for r in rows if r["task_id"] == first[0]["task_id"]][0]["wall_s"] == first[0]["wall_s"]
    assert all(r["accepted"] for r in rows)

    summary = json.loads((out / "summary.json").read_text())
    assert summary["levels"]["all"]["accuracy"] == 1.0 and summary["timed"] is False
    assert "no timing" in done.stdout and "fast_p>0" in summary["note"]
    assert (out / "results.csv").read_text().count("\n") == len(NAMES) + 1
    assert (out / "speedups.png").stat().st_size > 1000
    assert list((out / "wandb").glob("offline-run-*")), "the W&B run is written offline"
    assert len(list((out / "logs").glob("*.json"))) == len(NAMES)

    again = subprocess.run(
        bench_cmd(out, replay, "wandb.enabled=false"),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert f"{len(NAMES)} already done" in again.stdout and len(ResultStore(results).rows()) == len(NAMES)

    # a subset report never replaces the fuller summary; a verifier config that changes verdicts reuses none
    subset = subprocess.run(
        bench_cmd(out, replay, "wandb.enabled=false", "report_only=true", names=["softmax"]),
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert subset.returncode == 0, subset.stderr[-2000:]
    assert json.loads((out / "summary.json").read_text())["levels"]["all"]["tasks"] == len(NAMES)
    assert json.loads((out / "summary_subset.json").read_text())["levels"]["all"]["tasks"] == 1
    other = subprocess.run(
        bench_cmd(out, replay, "wandb.enabled=false", "report_only=true", "verify.trials=6"),
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert other.returncode == 0, other.stderr[-2000:]
    assert "0 already done" in other.stdout and f"{len(NAMES)} rows made under another config" in other.stdout


def test_merge_compares_runs(tmp_path, capsys):
    for name, acc in (("a", 1.0), ("b", 0.5)):
        run = tmp_path / "multirun" / name
        run.mkdir(parents=True)
        level = {
            "tasks": 2,
            "correct": int(2 * acc),
            "accuracy": acc,
            "geomean_speedup_eager": None,
            "geomean_speedup_compile": None,
            "stage_failures": {},
            "error_classes": {},
        }
        level.update({f"fast_{p}_{b}": 0.0 for p in ("0", "1", "1.5", "2") for b in ("eager", "compile")})
        (run / "summary.json").write_text(
            json.dumps({"title": f"fixtures | {name}", "levels": {"all": level}})
        )
    runs = merge([str(tmp_path / "multirun")], out=str(tmp_path / "cmp"))
    assert list(runs) == ["fixtures | a", "fixtures | b"]
    text = capsys.readouterr().out
    assert "R0 = fixtures | a" in text and "1.00" in text and "0.50" in text
    assert (tmp_path / "cmp" / "comparison.csv").read_text().startswith("run,tasks,correct,accuracy")
    with pytest.raises(FileNotFoundError, match="no summary.json"):
        merge([str(tmp_path / "cmp")])


@pytest.mark.parametrize("args, message", [
    (["generator=replay"], "generator.path has no value; set it on the command line"),
    (["suite=kernelbench", "suite.path=/nonexistent/kb"], "not found at /nonexistent/kb"),
])
def test_bad_config_is_one_line_and_exit_2(tmp_path, args, message):
    r = subprocess.run([sys.executable, "-m", "bench", *args, f"out_dir={tmp_path}/run"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr[-1500:]
