"""search: test-time search for fast Triton kernels (fragment search, best-of-n, refinement).

    from search import FragmentSearch, Judge, ReplayGenerator, trace
    program = trace(task)                                  # the task as a flat operator graph (synth IR)
    with Judge({"trials": 5}) as judge:
        result = FragmentSearch(max_len=5).search(task, ReplayGenerator("replay.jsonl"), judge)
    print(result.summary(), result.best_text)

CLI: `python -m search task=PATH strategy=... generator=...` (see search.cli).
"""

from search.assembly import Assembly, Segment, best_assembly, enumerate_spans
from search.frontend import Program, UnsupportedConstruct, trace
from search.generators import Generator, ReplayGenerator, append_replay, prompt_hash
from search.judge import Judge
from search.result import Attempt, SearchResult
from search.strategies import BestOfN, Budget, FragmentSearch, Refine, Strategy

__all__ = [
    "Assembly",
    "Segment",
    "best_assembly",
    "enumerate_spans",
    "Program",
    "UnsupportedConstruct",
    "trace",
    "Generator",
    "ReplayGenerator",
    "append_replay",
    "prompt_hash",
    "Judge",
    "Attempt",
    "SearchResult",
    "BestOfN",
    "Budget",
    "FragmentSearch",
    "Refine",
    "Strategy",
]
