"""rayside's no-Ray job submitter: submits a Ray job to a dashboard and follows its logs.

Used as the RayJob submitter pod (K8sJobMode) and as the head-pod sidecar (SidecarMode). Depends only on
the standard library, requests, tenacity and websocket-client. Entry point: `submitter.cli:main`.
"""
