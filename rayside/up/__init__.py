"""`rayside up`: run KubeRay YAML (RayJob, RayCluster, RayService and their ConfigMaps, ...) on this machine
with real Ray, on an in-process localkube (process kubelet) and the rayside operator."""
