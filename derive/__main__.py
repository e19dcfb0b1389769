"""``python -m derive`` is the ``derive`` command."""

import sys

from derive.cli.command import main

sys.exit(main())
