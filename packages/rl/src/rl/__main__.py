"""`python -m rl +experiment=NAME`: compose veRL's trainer config with rl's and run it (see rl.launch).

veRL's own config folder is the primary config path (pkg://, so it works from any directory); rl's configs,
verify's reward group and the workspace's root conf/ join through the Hydra search-path plugins.
"""
import hydra

from rl.launch import run


@hydra.main(version_base=None, config_path="pkg://verl.trainer.config", config_name="rl")
def main(cfg) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
