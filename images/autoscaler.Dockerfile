# The autoscaler sidecar image: Ray (the autoscaler monitor, the GCS client, `ray health-check`) plus rayside's
# provider and the `autoscaler` extra of pyproject.toml. The operator runs it as the head pod's `autoscaler`
# container with `python -m autoscaler_provider --cluster-name N --cluster-namespace NS`; select it with
# `spec.autoscalerOptions.image` (by default the sidecar uses the Ray head image, which lacks the provider).
#   docker build -f images/autoscaler.Dockerfile -t rayside/autoscaler .
#   docker build -f images/autoscaler.Dockerfile --build-arg RAY_IMAGE=rayproject/ray:2.60.0-py311 ...
# RAY_IMAGE must carry the Ray version the cluster runs (the autoscaler talks to the head's GCS).
ARG RAY_IMAGE=rayproject/ray:2.60.0
FROM ${RAY_IMAGE}
USER root
COPY pyproject.toml README.md /tmp/rayside/
COPY rayside /tmp/rayside/rayside
COPY operator /tmp/rayside/operator
COPY localkube /tmp/rayside/localkube
COPY submitter /tmp/rayside/submitter
COPY autoscaler_provider /tmp/rayside/autoscaler_provider
# Ray itself comes from the base image and is not touched: the extra pins only the Kubernetes client side.
RUN python -m pip install --no-cache-dir '/tmp/rayside[autoscaler]' \
    && rm -rf /tmp/rayside \
    && python -c "import autoscaler_provider.provider, ray.autoscaler.v2.monitor"
USER 1000:100
ENV PYTHONUNBUFFERED=1
CMD ["python", "-m", "autoscaler_provider", "--help"]
