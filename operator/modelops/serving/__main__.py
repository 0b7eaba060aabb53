"""`python -m modelops.serving` is `modelops serve`."""

import sys

from modelops.serving.cli import main

sys.exit(main())
