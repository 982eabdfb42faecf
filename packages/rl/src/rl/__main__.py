"""`python -m rl +experiment=NAME`: compose veRL's trainer config with rl's and run it (see rl.cli).

rl's configs, veRL's trainer configs and verify's groups join through the Hydra search-path plugins
(config_path=None, as every package's CLI, so that the plugins know the app is ours).
"""
import hydra

from rl.cli import run


@hydra.main(version_base=None, config_path=None, config_name="rl")
def main(cfg) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
