"""Hydra search-path plugin: makes `pkg://verify.conf` and the workspace's root `conf/` visible.

Every package depends on verify, so this plugin is also the one that finds cross-package configs
(experiments, sweeps, launchers) in the checkout's root `conf/`, from any working directory. Set
`DRTRITON_CONF_DIR` to use another folder. Kept import-light: Hydra imports every plugin at start-up.
"""
import os
from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


def root_conf_dir() -> Path | None:
    """The root `conf/` of an editable checkout (or `$DRTRITON_CONF_DIR`), if there is one."""
    env = os.environ.get("DRTRITON_CONF_DIR")
    if env:
        return Path(env).resolve()
    # packages/verify/src/hydra_plugins/verify_searchpath/<this file> -> checkout root is parents[5]
    candidate = Path(__file__).resolve().parents[5] / "conf"
    return candidate if candidate.is_dir() else None


class VerifySearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        search_path.append(provider="verify", path="pkg://verify.conf")
        root = root_conf_dir()
        if root is not None:
            search_path.append(provider="drtriton-root", path=f"file://{root}")
