"""rayside: the Ray-side components of KubeRay, in Python.

This package only holds the `rayside` command dispatcher; each component lives in its own top-level
package (`submitter`, `localkube`, `ray_operator`, `autoscaler_provider`) and is imported lazily so that
an image with a single extra installed (e.g. the submitter) never imports the others.
"""

__version__ = "0.1.0"
