"""`python -m synth key=value ...`: generate synthetic programs (options in conf/synth.yaml)."""
import sys

import hydra
from omegaconf import DictConfig


@hydra.main(version_base=None, config_path=None, config_name="synth")
def main(cfg: DictConfig) -> None:
    from synth.ops import UnknownOpError
    from synth.run import run
    from synth.sampler import ConfigError

    try:
        run(cfg)
    except (ConfigError, UnknownOpError) as e:
        print(f"synth: error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
