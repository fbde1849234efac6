"""``python -m pymc_tracers.cli``: the ``pymc-tracers`` command."""

import sys

from pymc_tracers.cli.main import main

sys.exit(main())
