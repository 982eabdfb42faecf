"""Search strategies, a config group (`strategy=fragments|best_of_n|refine`), all behind one interface:

strategy = hydra.utils.instantiate(cfg.strategy)
result = strategy.search(task, generator, judge)      # search.result.SearchResult
"""

from search.strategies.base import Budget, Strategy
from search.strategies.best_of_n import BestOfN
from search.strategies.fragments import FragmentSearch
from search.strategies.refine import Refine

__all__ = ["Budget", "Strategy", "BestOfN", "FragmentSearch", "Refine"]
