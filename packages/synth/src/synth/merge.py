"""`python -m synth.merge OUT`: merge the shards of a multirun (`OUT/shard_*`) into OUT.

Shards are taken in shard order and programs in manifest order; a program whose structural hash was
already taken is dropped (shards never share an index, but two indices can make the same program).
Writes OUT/tasks, OUT/manifest.jsonl, OUT/<split>.parquet per split, and OUT/summary.json.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from synth.export import MANIFEST, read_manifest, write_parquet
from synth.ops import compute_ops
from synth.prompts import PromptTemplate
from synth.stats import summarize


def _shard_order(path: Path) -> tuple[int, str]:
    """shard_<n>[_<choices>]: by shard number, then by the job's other choices."""
    number = path.name.split("_")[1]
    return (int(number) if number.isdigit() else -1, path.name)


def merge(out: str | Path, data_source: str = "drtriton/synth", prompt: PromptTemplate | None = None) -> dict:
    """Merge `out/shard_*` into `out`; returns the merged summary."""
    out = Path(out)
    shards = sorted(out.glob("shard_*"), key=_shard_order)
    shards = [s for s in shards if (s / MANIFEST).is_file()]
    if not shards:
        raise FileNotFoundError(
            f"no shard_*/{MANIFEST} under {out}; run `python -m synth -m shard=0,1 out={out}` first")
    seen, entries, duplicates = set(), [], 0
    for shard in shards:
        for entry in read_manifest(shard):
            if entry["hash"] in seen:
                duplicates += 1
                continue
            seen.add(entry["hash"])
            target = out / entry["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shard / entry["path"], target)
            shutil.copyfile((shard / entry["path"]).with_suffix(".json"), target.with_suffix(".json"))
            entries.append(entry)
    with open(out / MANIFEST, "w") as f:
        for entry in entries:
            f.write(json.dumps(entry) + "\n")
    prompt = prompt or PromptTemplate()
    for split in sorted({e["split"] for e in entries}):
        write_parquet(out, [e for e in entries if e["split"] == split], split, prompt, data_source)
    shard_summaries = [json.loads((s / "summary.json").read_text()) for s in shards
                       if (s / "summary.json").is_file()]
    summary = {"out": str(out), "shards": [s.name for s in shards], "cross_shard_duplicates": duplicates,
               "wall_s_max": max((s["wall_s"] for s in shard_summaries), default=None),
               "generated": sum(s["generated"] for s in shard_summaries),
               "duplicates": sum(s["duplicates"] for s in shard_summaries) + duplicates,
               "failed": sum(s["failed"] for s in shard_summaries),
               **summarize(entries, [op.name for op in compute_ops()])}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m synth.merge", description=__doc__.splitlines()[0])
    parser.add_argument("out", help="the out= folder of the multirun (holding shard_0, shard_1, ...)")
    parser.add_argument("--data-source", default="drtriton/synth",
                        help="data_source column of the parquet rows")
    args = parser.parse_args(argv)
    try:
        summary = merge(args.out, args.data_source)
    except FileNotFoundError as e:
        print(f"synth.merge: error: {e}", file=sys.stderr)
        return 2
    print(f"synth.merge: {summary['programs']} programs from {len(summary['shards'])} shards "
          f"({summary['cross_shard_duplicates']} cross-shard duplicates) -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
