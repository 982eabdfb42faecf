"""benchmarks/verify/repeat_pairs.py: pairs of separate verifiers pooled over benchmark result files (CPU)."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "verify" / "repeat_pairs.py"


def _load():
    spec = importlib.util.spec_from_file_location("repeat_pairs", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _result(path: Path, medians: dict[str, list[float]]) -> str:
    per_task = [{"task": t, "cand_ms_runs": v} for t, v in medians.items()]
    phase = {"runs": 2, "max_diff": 0.0, "within_3pct": 0, "timed_tasks": len(per_task), "per_task": per_task}
    path.write_text(json.dumps({"date": "2026-12-03", "repeatability": {"4": phase}}))
    return str(path)


def test_pairs_across_files_are_counted(tmp_path):
    a = _result(tmp_path / "a.json", {"t/fast": [1.00, 1.01], "t/slow": [2.0, 2.0]})
    b = _result(tmp_path / "b.json", {"t/fast": [1.05, 1.00], "t/slow": [2.02, 2.0]})
    medians, runs = _load().pool([a, b], "4")
    assert medians["t/fast"] == [1.00, 1.01, 1.05, 1.00] and len(runs) == 2
    out = tmp_path / "pairs.json"
    subprocess.run([sys.executable, str(SCRIPT), a, b, "--out", str(out)], check=True, capture_output=True)
    rows = {r["task"]: r for r in json.loads(out.read_text())["tasks"]}
    # 1.05 against each 1.00 (5 %) and against 1.01 (3.96 %): 3 of 6 pairs; t/slow's worst pair is 1 %
    assert rows["t/fast"]["pairs_over"] == 3 and rows["t/fast"]["pairs"] == 6
    assert rows["t/slow"]["pairs_over"] == 0


def test_missing_scale_names_the_fix(tmp_path):
    a = _result(tmp_path / "a.json", {"t/x": [1.0, 1.0]})
    p = subprocess.run([sys.executable, str(SCRIPT), a, "--scale", "64MiB"], capture_output=True, text=True)
    assert (p.returncode != 0 and "no repeatability phase at scale '64MiB'" in p.stderr
            and "--scale" in p.stderr)
