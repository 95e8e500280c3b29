"""Entry point for ``python -m dynconf``."""

import sys

from dynconf.cli import main

sys.exit(main())
