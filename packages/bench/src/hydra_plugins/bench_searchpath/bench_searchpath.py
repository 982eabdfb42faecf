"""Hydra search-path plugin: makes `pkg://bench.conf` visible to this workspace's apps only (the rule is
`workspace_app` in verify's plugin). Kept import-light on purpose: Hydra imports every plugin at start-up.
"""
from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin
from hydra_plugins.verify_searchpath.verify_searchpath import workspace_app


class BenchSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        if workspace_app(search_path):
            search_path.append(provider="bench", path="pkg://bench.conf")
