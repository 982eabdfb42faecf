"""bench: KernelBench-style evaluation of a generator + strategy, against eager and torch.compile.

python -m bench suite=fixtures strategy=best_of_n generator=replay generator.path=replay.jsonl
python -m bench.merge runs/bench                         # compare runs (e.g. a multirun)

from bench.metrics import summarize, fast_p, geomean_speedup   # pure functions over result rows
"""
