"""Every shell command in README.md's fenced ```bash blocks runs as written, on CPU, from a scratch folder
(issue 28): a command that breaks, or a README command this file has no rule for, fails the test.

What is changed, each stated in RULES with the reason:
- cheap sizes appended as Hydra overrides (a later override of the same key wins): `n=...` (and
  `workers=1`, see IN_PROCESS) for synth, `suite.limit=1` for bench;
- a command that needs a GPU, a cluster, a served model or a dataset only composes its config:
  `--cfg job`, or for `python -m rl` `rl.dry_run=true` (veRL's validation too, nothing starts);
- a shell script that needs a GPU is only parsed (`bash -n`); `scripts/install.sh` is not run (`.ci/run`
  runs it before the tests);
- absolute `/tmp/` paths point into the scratch folder, so runs on a shared machine cannot collide;
- files the README's commands take from the user (`t.py`, `c.py`, `completion.md`, `pairs.jsonl`, the
  replay files `a.jsonl`, `b.jsonl`) are made from the verifier's fixtures first (`_user_files`).

Commands whose paths are relative to the checkout (`.venv/...`, `benchmarks/...`, `scripts/...`) run from
the repository root; all others from the scratch folder. About 33 processes that each import torch: about
4 minutes on 2 idle cores (9 on a loaded machine), hence `slow`.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from verify.fixtures import CANDIDATES_DIR, TASKS_DIR

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SKIP = "skip"  # a segment of an `a && b` line that is not run (its reason is in the rule)
SYNTAX = "syntax"  # a shell script that is only parsed (bash -n)
NO_MULTIRUN_CFG = "cfg-hydra"  # Hydra refuses --cfg with -m: drop -m, print the hydra config (the launcher)
COMPILE = "py_compile"  # a Python script that is only compiled
DRY = "rl.dry_run=true"
CFG = "--cfg job"
# synth in one process: its pool of workers costs seconds per job to start on a loaded 2-core machine; the
# joblib line keeps the default pool, so that path stays tested
IN_PROCESS = "workers=1"

# README command (comments dropped, whitespace collapsed) -> (cwd "repo" or "scratch", one action per
# `&&` segment: overrides to append, SKIP, SYNTAX, NO_MULTIRUN_CFG or COMPILE; why)
RULES: dict[str, tuple[str, list[str], str]] = {
    "bash scripts/install.sh && .venv/bin/python -m verify": (
        "repo", [SKIP, CFG], "install.sh is run by .ci/run before the tests; the default job (64 candidates, "
        "minutes on 2 cores) is composed here, its candidates run in tests/verify"),
    "bash scripts/install.sh && .venv/bin/python -m pytest": (
        "repo", [SKIP, "--co -q"],
        "this test runs inside that command: collecting checks every module imports"),
    "python -m verify task=t.py candidate=c.py": ("scratch", [""], "as written"),
    "python -m verify task=t.py candidate=completion.md output=json": ("scratch", [""], "as written"),
    "python -m verify batch=pairs.jsonl out=verdicts.jsonl": ("scratch", [""], "as written"),
    "python -m verify verify.trials=8 verify.compile_baseline=true reward=speedup": (
        "scratch", [CFG], "the whole fixture suite (minutes on CPU): composed"),
    "python -m synth n=1000 level=2 out=/tmp/l2": ("scratch", [f"n=3 {IN_PROCESS}"], "cheap size"),
    "python -m synth --config-name synth_heldout out=/tmp/heldout": (
        "scratch", [f"n=[1,1,1,1] {IN_PROCESS}"], "cheap size"),
    "python -m synth level=[1,2,5] n=[20000,60000,20000] out=/tmp/rl exclude=[/tmp/heldout]": (
        "scratch", [f"n=[2,2,2] {IN_PROCESS}"],
        "cheap size; excludes the held-out set written by the line before"),
    "python -m synth -m shard=0,1,2,3 n=25000 out=/tmp/big && python -m synth.merge /tmp/big": (
        "scratch", [f"n=2 {IN_PROCESS}", ""], "cheap size"),
    "python benchmarks/synth/bench_synth.py rate": (
        "repo", [COMPILE], "a benchmark of minutes that rewrites the committed results.json: compiled"),
    "python -m synth level=1 n=390 teacher.enabled=true teacher.supported_only=true sampler.max_dim=64 "
    "sampler.max_elements=32768 sampler.max_flops=2097152 out=runs/sft_l1": (
        "scratch", [f"n=2 {IN_PROCESS}"], "cheap size (each program is verified on the CPU)"),
    "python -m rl +experiment=sft_warmup rl.sft_pairs=runs/sft_l1/sft_pairs.parquet": (
        "scratch", [DRY], "veRL's SFT trainer needs a GPU"),
    "python -m search.fixtures replay.jsonl": ("scratch", [""], "as written"),
    "python -m search task=fixtures/swish_residual strategy=fragments generator=replay "
    "generator.path=replay.jsonl": ("scratch", [""], "as written"),
    "python -m bench suite=fixtures strategy=best_of_n generator=replay generator.path=replay.jsonl": (
        "scratch", ["suite.limit=1"], "cheap size"),
    "python -m bench suite=kernelbench suite.path=/data/KernelBench generator=openai generator.model=NAME": (
        "scratch", [CFG], "needs KernelBench and a served model"),
    "python -m bench -m generator=replay generator.path=a.jsonl,b.jsonl && python -m bench.merge runs/bench "
    "--out cmp": ("scratch", ["suite.limit=1", ""], "cheap size"),
    "python -m bench": ("scratch", ["suite.limit=1"], "cheap size"),
    'OUT=out KB=/data/KernelBench LEVELS="2 1 3" bash scripts/gpu_kernelbench.sh': (
        "repo", [SYNTAX], "needs a GPU and KernelBench"),
    "python -m rl +experiment=drtriton_7b --cfg job": ("scratch", [""], "as written"),
    "python -m rl +experiment=sft_warmup rl.sft_pairs=/data/sft_level1.parquet": (
        "scratch", [DRY], "veRL's SFT trainer needs a GPU"),
    "python -m rl +experiment=drtriton_7b actor_rollout_ref.model.path=/ckpt/sft_7b": (
        "scratch", [DRY], "8 GPUs"),
    "python -m rl -m +experiment=ablation_1p5b sweep=ablation_1p5b": (
        "scratch", [DRY], "GPUs; each of the 6 jobs is validated"),
    "python -m rl -m +experiment=ablation_1p5b sweep=ablation_1p5b hydra/launcher=slurm_h100 "
    "hydra.launcher.partition=gpu": ("scratch", [NO_MULTIRUN_CFG], "a SLURM cluster"),
    "python -m synth -m hydra/launcher=joblib hydra.launcher.n_jobs=2 solver=fast,pulp n=100": (
        "scratch", ["n=3"], "cheap size"),
    "DRTRITON_DATA=/data/synth python -m rl +experiment=smoke": ("scratch", [DRY], "a GPU and data"),
    "STEP=setup,data,sft bash scripts/mini_pipeline.sh": ("repo", [SYNTAX], "a GPU and the offline kit"),
    "STEP=sft bash scripts/mini_pipeline.sh": ("repo", [SYNTAX], "a GPU and the offline kit"),
    "STEP=drpo bash scripts/mini_pipeline.sh": ("repo", [SYNTAX], "a GPU and the offline kit"),
    "STEP=bench_base,bench_sft,bench_drpo,summary bash scripts/mini_pipeline.sh": (
        "repo", [SYNTAX], "a GPU and the offline kit"),
}


def readme_commands(text: str) -> list[str]:
    """The shell commands of the README's ```bash blocks: comments dropped, `\\` continuations joined."""
    out = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$|^\s*#.*$", "", line)
            line = " ".join(line.split())
            if line:
                out.append(line)
    return out


COMMANDS = readme_commands(README.read_text())


def test_commands_are_read_from_bash_blocks_only():
    text = "x\n```bash\n# note\na b=1   # c\nd \\\n  e\n```\n```python\nf()\n```\n"
    assert readme_commands(text) == ["a b=1", "d e"]


def test_every_readme_command_has_a_rule():
    missing = [c for c in COMMANDS if c not in RULES]
    stale = [c for c in RULES if c not in COMMANDS]
    assert not missing, f"README commands without a rule in {__file__} (add one): {missing}"
    assert not stale, f"rules for commands no longer in the README (drop them): {stale}"


def _user_files(scratch: Path) -> None:
    """The files the README's commands take from the user, made from the verifier's fixtures."""
    task, cand = TASKS_DIR / "relu_scale_bias.py", CANDIDATES_DIR / "relu_scale_bias.py"
    shutil.copy(task, scratch / "t.py")
    shutil.copy(cand, scratch / "c.py")
    (scratch / "completion.md").write_text(f"The kernel:\n```python\n{cand.read_text()}```\n")
    (scratch / "pairs.jsonl").write_text(json.dumps({"task": "t.py", "candidate": "c.py"}) + "\n")


def _segment(part: str, action: str, scratch: Path, cwd: Path) -> str | None:
    """The shell text that runs one `&&` segment under its rule's action (None: not run)."""
    part = part.replace("/tmp/", f"{scratch}/tmp/")
    if action == SKIP:
        return None
    if action == SYNTAX:
        return f"bash -n {shlex.quote(part.split('bash ', 1)[1].split()[0])}"
    if action == NO_MULTIRUN_CFG:
        return part.replace(" -m +", " +", 1) + " --cfg hydra"
    if action == COMPILE:
        return f"python -m py_compile {part.split()[1]}"
    return f"{part} {action}".strip()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    folder = tmp_path_factory.mktemp("readme")
    _user_files(folder)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[:60])
def test_readme_command_runs(command, scratch):
    if command not in RULES:
        pytest.fail(f"no rule for README command {command!r}")
    where, actions, why = RULES[command]
    parts = command.split(" && ")
    assert len(parts) == len(actions), f"rule for {command!r} needs one action per && segment"
    cwd = REPO if where == "repo" else scratch
    if command.startswith("python -m bench -m"):  # the two replay files of the comparison
        for name in ("a.jsonl", "b.jsonl"):
            shutil.copy(scratch / "replay.jsonl", scratch / name)
    env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "DRTRITON_DATA")}
    venv_bin = str(Path(sys.executable).parent)
    env.update(PATH=f"{venv_bin}:{env.get('PATH', '')}", TRITON_INTERPRET="1", WANDB_MODE="offline",
               CUDA_VISIBLE_DEVICES="")
    for part, action in zip(parts, actions):
        line = _segment(part, action, scratch, cwd)
        if line is None:
            continue
        run = subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True,
                             timeout=300)
        assert run.returncode == 0, f"{line}\n({why})\n{(run.stdout + run.stderr)[-3000:]}"
        if action == NO_MULTIRUN_CFG:
            assert "submitit" in run.stdout, run.stdout[-2000:]
