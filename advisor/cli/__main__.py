"""`python -m advisor.cli ...`, the same as the `advisor` command."""

import sys

from advisor.cli.main import main

sys.exit(main())
