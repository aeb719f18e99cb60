"""`python -m latentatlas.cli`: the same as the `latentatlas` command."""

import sys

from latentatlas.cli import main

if __name__ == "__main__":
    sys.exit(main())
