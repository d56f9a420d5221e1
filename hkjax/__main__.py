"""``python -m hkjax``: the ``hkjax`` command (see :mod:`hkjax.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
