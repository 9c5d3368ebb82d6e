"""`python -m localkube [serve] [flags]`: same as `rayside localkube serve`."""

from __future__ import annotations

import sys

from localkube.cli import main

args = sys.argv[1:]
if args[:1] == ["serve"]:
    args = args[1:]
sys.exit(main(args))
