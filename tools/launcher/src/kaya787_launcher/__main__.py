"""`python -m kaya787_launcher` is the same as the `kaya787` command."""

import sys

from kaya787_launcher.cli import main

sys.exit(main())
