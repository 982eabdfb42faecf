"""Hydra search-path plugin: makes `pkg://search.conf` visible to every Hydra app.

Kept import-light on purpose: Hydra imports every plugin at start-up.
"""
from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class SearchSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        search_path.append(provider="search", path="pkg://search.conf")
