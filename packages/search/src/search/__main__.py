"""CLI: `python -m search task=PATH strategy=fragments|best_of_n|refine generator=replay|openai|...`."""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base=None, config_path=None, config_name="search")
def main(cfg: DictConfig) -> None:
    from search.cli import run  # after composition: --help and --cfg job never import torch

    run(cfg)


if __name__ == "__main__":
    main()
