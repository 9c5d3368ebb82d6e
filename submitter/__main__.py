"""`python -m submitter ARGS` runs the submitter (same as `rayside submit ARGS`)."""

import sys

from submitter.cli import main

sys.exit(main(sys.argv[1:]))
