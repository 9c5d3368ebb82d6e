"""Node provider plugin for the Ray autoscaler that scales RayClusters through the ray.io/v1 CR.

Handles top-level worker-group `labels`/`resources` and multi-host (numOfHosts) slices.
"""
