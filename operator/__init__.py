"""ray_operator: a compact operator for the ray.io/v1 CRDs (RayCluster, RayJob, RayService).

The source folder is `operator/`; it is imported as `ray_operator` because a top-level package named
`operator` would shadow the standard library module.
"""
