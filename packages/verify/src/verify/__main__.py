"""python -m verify: verify candidates from the command line (see conf/verify.yaml for usage)."""
from verify.cli import main

if __name__ == "__main__":
    main()
