"""`python -m verify` as a user runs it: exit statuses 0/1/2, JSON output, batch mode, clear errors."""
import json
import os
import subprocess
import sys

from verify.fixtures import ADVERSARIAL_DIR, CANDIDATES_DIR, TASKS_DIR

ENV = {**os.environ, "TRITON_INTERPRET": "1"}
BROKEN_TASK = ("import torch\nclass Model(torch.nn.Module):\n    def forward(self, x):\n        return x\n"
               "def get_inputs():\n    raise RuntimeError('boom')\ndef get_init_inputs():\n    return []\n")


def cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "verify", *args], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=300)


def test_accepted_rejected_and_bad_input(tmp_path):
    task = TASKS_DIR / "relu_scale_bias.py"
    ok = cli(f"task={task}", f"candidate={CANDIDATES_DIR / 'relu_scale_bias.py'}", cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "ACCEPTED" in ok.stdout
    bad = cli(f"task={TASKS_DIR / 'relu_scale_bias.py'}",
              f"candidate={ADVERSARIAL_DIR / 'torch_fallback.py'}", "output=json", cwd=tmp_path)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert json.loads(bad.stdout)["error_class"] == "torch_fallback"
    missing = cli(f"task={tmp_path / 'nope.py'}", f"candidate={CANDIDATES_DIR / 'relu_scale_bias.py'}",
                  cwd=tmp_path)
    assert missing.returncode == 2 and "not found" in missing.stderr and "Traceback" not in missing.stderr
    broken = tmp_path / "broken.py"
    broken.write_text(BROKEN_TASK)
    runs_not = cli(f"task={broken}", f"candidate={CANDIDATES_DIR / 'relu_scale_bias.py'}", cwd=tmp_path)
    assert runs_not.returncode == 2 and "does not run" in runs_not.stderr
    typo = cli(f"task={task}", f"candidate={CANDIDATES_DIR / 'relu_scale_bias.py'}", "verify.trails=3",
               cwd=tmp_path)
    assert typo.returncode == 2


def test_batch_folder_writes_jsonl(tmp_path):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "candidates").mkdir()
    for name in ("relu_scale_bias", "swish_residual"):
        (tmp_path / "tasks" / f"{name}.py").write_text((TASKS_DIR / f"{name}.py").read_text())
        (tmp_path / "candidates" / f"{name}.py").write_text((CANDIDATES_DIR / f"{name}.py").read_text())
    (tmp_path / "candidates" / "swish_residual__hack.py").write_text("no code here")
    (tmp_path / "tasks" / "broken.py").write_text(BROKEN_TASK)  # a task that does not run spoils only its row
    (tmp_path / "candidates" / "broken.py").write_text((CANDIDATES_DIR / "relu_scale_bias.py").read_text())
    out = tmp_path / "out.jsonl"
    run = cli(f"batch={tmp_path}", f"out={out}", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    rows = {r["name"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert rows["relu_scale_bias"]["accepted"] and rows["swish_residual"]["accepted"]
    assert rows["swish_residual__hack"]["error_class"] == "no_code_block"
    assert not rows["broken"]["accepted"] and "does not run" in rows["broken"]["error"]


def test_a_malformed_sidecar_is_bad_input_with_a_message(tmp_path):
    task = tmp_path / "relu.py"
    task.write_text((TASKS_DIR / "relu_scale_bias.py").read_text())
    for sidecar, says in (('{"level": 1, "ops": ["relu"', "not valid JSON"), ("[1, 2]", "JSON object"),
                          ('{"ops": "relu"}', "list of operator names")):
        task.with_suffix(".json").write_text(sidecar)
        run = cli(f"task={task}", f"candidate={CANDIDATES_DIR / 'relu_scale_bias.py'}", cwd=tmp_path)
        assert run.returncode == 2 and says in run.stderr and "Traceback" not in run.stderr, run.stderr


def test_batch_writes_a_row_per_pair_whatever_a_candidate_or_task_holds(tmp_path):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "candidates").mkdir()
    (tmp_path / "tasks" / "relu_scale_bias.py").write_text((TASKS_DIR / "relu_scale_bias.py").read_text())
    (tmp_path / "tasks" / "sidecar.py").write_text((TASKS_DIR / "relu_scale_bias.py").read_text())
    (tmp_path / "tasks" / "sidecar.json").write_text("{not json")
    prose = " - ".join(["tile"] * 3000)  # 20 KB of one long expression: RecursionError in ast.parse
    (tmp_path / "candidates" / "relu_scale_bias__prose.md").write_text(prose)
    nested = "```python\nx = " + "not " * 50000 + "a\n```"  # MemoryError in CPython's parser
    (tmp_path / "candidates" / "relu_scale_bias__nested.md").write_text(nested)
    (tmp_path / "candidates" / "relu_scale_bias__crlf.md").write_text(
        ("Here:\n```py title=kernel.py\n" + (CANDIDATES_DIR / "relu_scale_bias.py").read_text() + "```\n")
        .replace("\n", "\r\n"))
    (tmp_path / "candidates" / "sidecar.py").write_text((CANDIDATES_DIR / "relu_scale_bias.py").read_text())
    out = tmp_path / "out.jsonl"
    run = cli(f"batch={tmp_path}", f"out={out}", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    rows = {r["name"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert set(rows) == {f"relu_scale_bias__{k}" for k in ("prose", "nested", "crlf")} | {"sidecar"}
    assert rows["relu_scale_bias__prose"]["error_class"] == "no_code_block"
    assert rows["relu_scale_bias__nested"]["error_class"] == "syntax_error"
    assert rows["relu_scale_bias__crlf"]["accepted"], rows["relu_scale_bias__crlf"]
    assert not rows["sidecar"]["accepted"] and "not valid JSON" in rows["sidecar"]["error"]


def test_jsonl_batch_verdicts_are_named_by_their_candidate_file(tmp_path):
    task, cand = TASKS_DIR / "relu_scale_bias.py", CANDIDATES_DIR / "relu_scale_bias.py"
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps(r) for r in (
        {"task": str(task), "candidate": str(cand)},
        {"task": str(task), "candidate": str(cand), "name": "mine"},
        {"task": str(task), "completion": "no code here"})) + "\n")
    out = tmp_path / "out.jsonl"
    run = cli(f"batch={pairs}", f"out={out}", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    names = [json.loads(line)["name"] for line in out.read_text().splitlines()]
    assert names == [str(cand), "mine", "pairs.jsonl:3"]
