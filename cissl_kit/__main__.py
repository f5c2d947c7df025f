"""``python -m cissl_kit …`` runs the command line."""

import sys

from ._entry import main

if __name__ == "__main__":  # (not when a spawned process imports this module as its parent's main)
    sys.exit(main())
