"""Hydra search-path plugin: makes `pkg://bench.conf` visible to every Hydra app.

Kept import-light on purpose: Hydra imports every plugin at start-up.
"""
from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class BenchSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        search_path.append(provider="bench", path="pkg://bench.conf")
