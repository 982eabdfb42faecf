"""`python -m synth key=value ...`: generate synthetic programs (options in conf/synth.yaml)."""
import sys

import hydra
from omegaconf import DictConfig


@hydra.main(version_base=None, config_path=None, config_name="synth")
def main(cfg: DictConfig) -> None:
    # after composition: --help and --cfg job never import the operator registry (torch)
    from synth.cli import run
    from synth.ops import UnknownOpError
    from synth.sampler import ConfigError

    try:
        run(cfg)
    except (ConfigError, UnknownOpError) as e:
        print(f"synth: error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
