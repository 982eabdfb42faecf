"""One completion per held-out task from a model, in one batched run, stored as a replay file for bench.

Step `bench_<model>` of scripts/mini_pipeline.sh: generating all prompts at once (transformers batches, or
vLLM) is much faster than bench's one-task-at-a-time calls to a generator that is not thread-safe; bench then
scores the stored completions (`generator=replay`) with many tasks in flight. The prompt is bench's own
(`search.prompts.task_messages`, the template the SFT pairs and RL rows were made with).

    python benchmarks/mini/generate.py --tasks /tmp/mini/data/heldout/tasks --model /tmp/smol \\
        --out /tmp/mini/bench/base/replay.jsonl [--engine transformers|vllm] [--max-new-tokens 1536]

Writes the replay JSONL (`search.generators.replay` format, one line per task with its task_id) and
`generation.json` beside it: engine, model, seconds, and how many completions hold a fenced code block.
"""
from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

from bench.suites import FolderSuite
from search.generators.replay import append_replay
from search.prompts import task_messages

FENCE = re.compile(r"```(?:python|py)?\s*\n.*?```", re.DOTALL)


def build_generator(args):
    if args.engine == "transformers":
        from search.generators.transformers_lm import TransformersGenerator

        return TransformersGenerator(model=args.model, gguf_file=args.gguf_file, temperature=args.temperature,
                                     top_p=args.top_p, max_new_tokens=args.max_new_tokens,
                                     batch_size=args.batch_size, seed=args.seed)
    if args.engine == "vllm":
        from search.generators.vllm_engine import VLLMGenerator

        # the verifier's GPU workers start after generation: vLLM may take half the card meanwhile
        engine = {"gpu_memory_utilization": args.gpu_memory, "enforce_eager": True, "max_model_len": 4096}
        return VLLMGenerator(model=args.model, temperature=args.temperature, top_p=args.top_p,
                             max_tokens=args.max_new_tokens, seed=args.seed, engine=engine)
    raise ValueError(f"--engine must be transformers or vllm, got {args.engine!r}")


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", required=True, help="folder of task files (synth's tasks/ of the held-out set)")
    p.add_argument("--model", required=True, help="model folder (HF format) or a folder holding --gguf-file")
    p.add_argument("--out", required=True, help="replay JSONL to write (replaced if present)")
    p.add_argument("--engine", default="transformers", help="transformers (any device) or vllm (GPU)")
    p.add_argument("--gpu-memory", type=float, default=0.5,
                   help="vLLM's share of the GPU's memory (lower it when training runs beside generation)")
    p.add_argument("--gguf-file", default=None, help="GGUF file inside --model (transformers only)")
    p.add_argument("--max-new-tokens", type=int, default=1536, help="tokens per completion")
    p.add_argument("--temperature", type=float, default=0.7, help="sampling temperature (0: greedy)")
    p.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling")
    p.add_argument("--batch-size", type=int, default=24, help="prompts per generate() call (transformers)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--limit", type=int, default=None, help="only the first N tasks")
    args = p.parse_args(argv)

    tasks = FolderSuite(args.tasks, source="synth", name="mini_heldout", limit=args.limit).tasks()
    prompts = [task_messages(t) for t in tasks]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    start = time.monotonic()
    generator = build_generator(args)
    loaded = time.monotonic()
    try:
        completions = generator.generate(prompts, n=1)
    finally:
        generator.close()
    done = time.monotonic()
    for task, prompt, texts in zip(tasks, prompts, completions):
        append_replay(out, prompt, texts, task_id=task.id)
    texts = [t for c in completions for t in c]
    info = {"engine": args.engine, "model": args.model, "tasks": len(tasks), "completions": len(texts),
            "with_code_block": sum(bool(FENCE.search(t)) for t in texts),
            "mean_chars": round(sum(map(len, texts)) / max(len(texts), 1), 1),
            "load_s": round(loaded - start, 1), "generate_s": round(done - loaded, 1),
            "max_new_tokens": args.max_new_tokens, "temperature": args.temperature, "top_p": args.top_p,
            "seed": args.seed}
    (out.parent / "generation.json").write_text(json.dumps(info, indent=1))
    print(f"generate: {info['completions']} completions for {info['tasks']} tasks in {info['generate_s']} s "
          f"(model load {info['load_s']} s); {info['with_code_block']} hold a fenced code block -> {out}")
    return info


if __name__ == "__main__":
    main()
