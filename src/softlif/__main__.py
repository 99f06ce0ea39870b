"""``python -m softlif COMMAND ...``: the ``softlif`` command line (also under torchrun)."""

import sys

from .cli import main

sys.exit(main())
