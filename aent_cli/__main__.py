"""``python -m aent_cli``: the same as the ``aent`` command."""

import sys

from aent_cli.dispatch import main

sys.exit(main())
