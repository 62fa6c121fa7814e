"""``python -m gridmap.cli ...``: the ``gridmap`` command."""

import sys

from gridmap.cli import main

if __name__ == "__main__":
    sys.exit(main())
