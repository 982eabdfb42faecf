"""Hydra search-path plugin: makes `pkg://rl.conf` (rl's groups and the workspace's launchers) and veRL's
trainer configs visible to this workspace's apps only (the rule is `workspace_app` in verify's plugin).
veRL's folder joins here rather than through rl.yaml's hydra.searchpath because rl.cli composes veRL's
`sft_trainer_engine` inside the running app, with the app's initial search path. Kept import-light on
purpose: Hydra imports every plugin at start-up.
"""
from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin
from hydra_plugins.verify_searchpath.verify_searchpath import workspace_app


class RlSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        if workspace_app(search_path):
            search_path.append(provider="rl", path="pkg://rl.conf")
            search_path.append(provider="verl", path="pkg://verl.trainer.config")
