"""``python -m qjournal``: the same command line as the ``qjournal`` console script."""

import sys

from qjournal.cli import main

sys.exit(main())
