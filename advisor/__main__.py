"""`python -m advisor ...`, the same as the `advisor` command."""

import sys

from advisor.cli.main import main

sys.exit(main())
