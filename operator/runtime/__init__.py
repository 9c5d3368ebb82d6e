"""The operator's part of the controller runtime: the by-RayCluster cache view, the status writer, Events,
scale expectations, leader election, the manager and health/metrics. Informers, the work queue and the
worker loop are the shared ones in `rayside.runtime`.
"""
