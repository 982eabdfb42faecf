"""Command line of the verifier: one candidate, a batch, or the fixture suite (the default job).

    python -m verify task=t.py candidate=c.py            # readable verdict; exit 0/1/2
    python -m verify task=t.py candidate=c.md output=json
    python -m verify batch=pairs.jsonl out=verdicts.jsonl
    python -m verify                                     # fixture + adversarial suite on this hardware

Exit status: 0 accepted (suite: every fixture accepted and every hack rejected as expected),
1 rejected, 2 unusable input (missing file, task that does not run, bad config).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from verify.config import VerifyConfig
from verify.fixtures import adversarial_cases, fixture_pairs
from verify.task import Task, TaskError
from verify.verifier import Verifier

EXIT_ACCEPTED, EXIT_REJECTED, EXIT_BAD_INPUT = 0, 1, 2
# values of `output`: a readable verdict, or one verdict as JSON
OUTPUTS = ("text", "json")


class InputError(ValueError):
    """Unusable input: the message says what is wrong and how to fix it."""


def _read(path: str | None, what: str) -> str:
    if not path:
        raise InputError(f"no {what} given: pass {what}=PATH")
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} file not found: {p}")
    return p.read_text()


def make_verifier(cfg: DictConfig) -> Verifier:
    vcfg = VerifyConfig.from_mapping(OmegaConf.to_container(cfg.verify, resolve=True))
    reward = instantiate(cfg.reward) if cfg.get("reward") else None
    return Verifier(vcfg, workers=cfg.workers, workers_per_gpu=cfg.workers_per_gpu, cache_path=cfg.cache_path,
                    reward=reward)


def run_one(cfg: DictConfig) -> int:
    text = _read(cfg.candidate, "candidate")
    if not cfg.task:
        raise InputError("no task given: pass task=PATH")
    task = Task.from_file(cfg.task)
    with make_verifier(cfg) as verifier:
        verdict = verifier.verify(task, text)
    print(json.dumps(verdict.to_dict(), indent=2) if cfg.output == "json" else verdict.summary())
    return EXIT_ACCEPTED if verdict.accepted else EXIT_REJECTED


def batch_pairs(spec: str) -> list[tuple[str, Task | TaskError, str]]:
    """(name, task, candidate text) from a folder with tasks/ + candidates/, or a JSONL of paths. A task
    that cannot be read takes its TaskError's place: that pair gets an error row, the others run. A pair is
    named by its candidate: the file's stem in a folder; in a JSONL its `name`, else the candidate's path as
    written, else (an inline completion) `FILE:LINE`."""
    p = Path(spec)
    if p.is_dir():
        tasks, cands = p / "tasks", p / "candidates"
        if not tasks.is_dir() or not cands.is_dir():
            raise InputError(
                f"batch folder {p} needs tasks/ and candidates/ subfolders (matched by file stem)")
        out = []
        for c in sorted(cands.iterdir()):
            if c.suffix in (".py", ".md", ".txt"):
                t = tasks / f"{c.stem.split('__')[0]}.py"
                if not t.is_file():
                    raise InputError(f"candidate {c.name} has no task {t.name} in {tasks}")
                out.append((c.stem, _task_or_error(t), c.read_text(errors="replace")))
        return out
    if p.is_file():
        out = []
        for i, line in enumerate(p.read_text().splitlines()):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                task = _task_or_error(Path(row["task"]))
                text = row["completion"] if "completion" in row else _read(row["candidate"], "candidate")
            except (ValueError, KeyError, TypeError) as e:
                raise InputError(f"{p}:{i + 1}: expected {{\"task\": path, \"candidate\": path}} or "
                                 f"{{\"task\": path, \"completion\": text}} ({e})") from None
            # named by its candidate file as written, or by its line when the completion is inline
            name = row.get("name") or row.get("candidate") or f"{p.name}:{i + 1}"
            out.append((str(name), task, text))
        return out
    raise InputError(f"batch not found: {p} (a folder with tasks/ and candidates/, or a JSONL file)")


def _task_or_error(path: Path) -> Task | TaskError:
    try:
        return Task.from_file(path)
    except TaskError as e:
        return e


def _verdicts(verifier: Verifier, pairs: list[tuple[Task, str]]) -> list:
    """A verdict per pair, or the exception that took its place: one pair never stops the others."""
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    def one(pair):
        try:
            return verifier.verify(*pair)
        except Exception as e:  # a broken task, or a verifier fault: that pair's row says which
            return e

    with ThreadPoolExecutor(max(1, verifier.workers)) as pool:
        return list(tqdm(pool.map(one, pairs), total=len(pairs), desc="verify", unit="cand"))


def _write_rows(path: str | None, rows: list[dict]) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
        print(f"wrote {len(rows)} verdicts to {path}")


def run_batch(cfg: DictConfig) -> int:
    pairs = batch_pairs(cfg.batch)
    runnable = [(t, c) for _, t, c in pairs if isinstance(t, Task)]
    with make_verifier(cfg) as verifier:
        done = iter(_verdicts(verifier, runnable))
    rows = []
    for name, task, _ in pairs:
        v = next(done) if isinstance(task, Task) else task
        if isinstance(v, TaskError):
            rows.append({"name": name, "task_id": getattr(task, "id", None), "accepted": False,
                         "error": f"bad task: {v}"})
        elif isinstance(v, Exception):
            rows.append({"name": name, "task_id": task.id, "accepted": False,
                         "error": f"verifier fault: {type(v).__name__}: {str(v)[:300]}"})
        else:
            rows.append({"name": name, **v.to_dict()})
    for row in rows:
        status = ("ACCEPTED" if row["accepted"]
                  else row.get("error") or f"rejected {row['stage']} {row['error_class']}")
        print(f"{row['name']:32s} {status}")
    _write_rows(cfg.out, rows)
    return EXIT_ACCEPTED


def run_suite(cfg: DictConfig) -> int:
    if cfg.suite != "fixtures":
        raise InputError(f"unknown suite {cfg.suite!r}; the verifier ships suite=fixtures")
    good = fixture_pairs()
    bad = adversarial_cases()
    jobs = [(t, c) for t, c in good] + [(case["task"], case["text"]) for case in bad]
    with make_verifier(cfg) as verifier:
        print(f"fixture suite: {len(good)} correct candidates, {len(bad)} adversarial, "
              f"backend {verifier.backend}, candidate confinement {verifier.confinement}")
        verdicts = verifier.verify_many(jobs, progress=True, desc="fixtures")
    rows, failures = [], 0
    for (task, _), v in zip(good, verdicts[:len(good)]):
        ok = v.accepted
        failures += not ok
        rows.append({"name": task.id, "expect": "accepted", "ok": ok, **v.to_dict()})
    for case, v in zip(bad, verdicts[len(good):]):
        ok = (v.stage, v.error_class) == (case["stage"], case["error_class"])
        failures += not ok
        rows.append({"name": f"adversarial/{case['name']}",
                     "expect": f"{case['stage']}/{case['error_class']}", "ok": ok, **v.to_dict()})
    print(f"\n{'case':36s} {'expected':34s} {'got':34s} {'speedup':>8s}  ok")
    for r in rows:
        got = "accepted" if r["accepted"] else f"{r['stage']}/{r['error_class']}"
        sp = f"{r['speedup_eager']:.2f}x" if r.get("speedup_eager") else "-"
        print(f"{r['name']:36s} {r['expect']:34s} {got:34s} {sp:>8s}  {'yes' if r['ok'] else 'NO'}")
    print(f"\n{len(rows) - failures}/{len(rows)} as expected")
    _write_rows(cfg.out, rows)
    return EXIT_ACCEPTED if failures == 0 else EXIT_REJECTED


def run(cfg: DictConfig) -> int:
    """Dispatch on the config; returns the exit status."""
    try:
        if cfg.output not in OUTPUTS:
            raise InputError(f"output={cfg.output} is not a choice: use one of {', '.join(OUTPUTS)}")
        if cfg.task or cfg.candidate:
            return run_one(cfg)
        if cfg.batch:
            return run_batch(cfg)
        return run_suite(cfg)
    except (InputError, TaskError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT


_STARTED = False


@hydra.main(version_base=None, config_path=None, config_name="verify")
def _main(cfg: DictConfig) -> None:
    global _STARTED
    _STARTED = True
    sys.exit(run(cfg))


def main() -> None:
    try:
        _main()
    except SystemExit as e:
        # Hydra exits 1 on a bad override or config before our code runs: that is unusable input.
        if not _STARTED and e.code not in (0, None):
            sys.exit(EXIT_BAD_INPUT)
        raise
    except Exception as e:  # with HYDRA_FULL_ERROR=1 Hydra raises instead of exiting
        if _STARTED:
            raise
        # Hydra's "Error merging override ..." wraps the reason (key, expected type): one line with both
        cause = " ".join(str(e.__cause__).split()) if e.__cause__ else ""
        print(f"error: {e}" + (f": {cause}" if cause else ""), file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
