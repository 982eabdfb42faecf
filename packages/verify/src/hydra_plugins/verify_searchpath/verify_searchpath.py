"""Hydra search-path plugin: makes `pkg://verify.conf` visible to this workspace's apps only.

Every package depends on verify, so `workspace_app` here is the rule every package's plugin follows: our
groups (experiment, reward, solver, suite, strategy, ...) join an app only when its primary config path is
absent (our CLIs pass config_path=None) or is one of ours, or when DRTRITON_HYDRA_GROUPS=1; any other Hydra
app installed beside us never sees them. Kept import-light: Hydra imports every plugin at start-up.
"""
import os

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

PACKAGES = ("verify", "synth", "search", "bench", "rl")


def workspace_app(search_path: ConfigSearchPath) -> bool:
    """True when the app composing `search_path` is one of ours (see the module docstring)."""
    if os.environ.get("DRTRITON_HYDRA_GROUPS") == "1":
        return True
    main = [e.path for e in search_path.get_path() if e.provider == "main"]
    if not main:
        return True
    path = main[0].rstrip("/")
    if path.startswith("pkg://"):
        # pkg://verify.conf, or pkg://verify where Hydra derives it from a CLI module (verify.cli)
        return path[len("pkg://"):].replace("/", ".").split(".")[0] in PACKAGES
    # a folder of ours given by path (initialize_config_dir in tests): <...>/<package>/conf
    parts = path.removeprefix("file://").replace("\\", "/").split("/")
    return len(parts) >= 2 and parts[-1] == "conf" and parts[-2] in PACKAGES


class VerifySearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        if not workspace_app(search_path):
            return
        # the `verifier` group's schema (verifier/schema, typed by VerifyConfig) is registered on import;
        # imported here, not at module level, so that foreign apps never load verify
        import verify.config  # noqa: F401
        search_path.append(provider="verify", path="pkg://verify.conf")
