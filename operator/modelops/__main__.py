"""`python -m modelops` is the same as the `modelops` command."""

import sys

from modelops.cli import main

sys.exit(main())
