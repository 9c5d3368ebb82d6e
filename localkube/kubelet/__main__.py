"""`python -m localkube.kubelet [flags]`: same as `rayside localkube kubelet`."""

from __future__ import annotations

import sys

from localkube.kubelet.cli import main

sys.exit(main(sys.argv[1:]))
