"""`python -m diffprog check PATH...`: the same command line as the `diffprog` console script."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
