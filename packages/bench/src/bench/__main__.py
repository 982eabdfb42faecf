"""CLI: `python -m bench suite=fixtures|kernelbench|folder|synth_heldout strategy=... generator=...`."""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base=None, config_path=None, config_name="bench")
def main(cfg: DictConfig) -> None:
    from bench.runner import run

    run(cfg)


if __name__ == "__main__":
    main()
