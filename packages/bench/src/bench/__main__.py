"""CLI: `python -m bench suite=fixtures|kernelbench|folder|synth_heldout strategy=... generator=...`.

A config that cannot run (a mandatory value left out, a path that does not exist, a wrong value) is one line
on stderr naming the key and the fix, and exit status 2.
"""

import sys

import hydra
from omegaconf import DictConfig
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from bench.cli import run


@hydra.main(version_base=None, config_path=None, config_name="bench")
def main(cfg: DictConfig) -> None:
    try:
        run(cfg)
    except MissingMandatoryValue as e:
        _fail(f"{e.full_key} has no value; set it on the command line ({e.full_key}=...)")
    except (OmegaConfBaseException, FileNotFoundError, ValueError) as e:
        _fail(str(e).splitlines()[0])


def _fail(message: str) -> None:
    print(f"bench: error: {message}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    main()
