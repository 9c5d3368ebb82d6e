"""Cyclic-GC tuning for the long-running localkube processes (serve and the kubelet), never for imports.

Both hold many long-lived JSON trees (objects, watch history, the node's pods) and allocate fast; with the
default thresholds (700, 10, 10) the cyclic collector re-scans that heap often enough to cost ~20-40% of
the CPU of a pod write, and full collections over 10,000 pods pause the process. The objects are trees
(reference counting frees them), so rarer collections are safe.
"""

from __future__ import annotations

import gc

GC_THRESHOLDS = (100_000, 50, 100)


def tune_gc() -> None:
    """Fewer cyclic-GC passes for this process."""
    gc.collect()
    gc.freeze()  # what start-up loaded (modules, registry) is never garbage
    gc.set_threshold(*GC_THRESHOLDS)
