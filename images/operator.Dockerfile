# The rayside operator image (not built in CI): `buildah bud -f images/operator.Dockerfile -t rayside-operator .`
FROM python:3.11-slim
WORKDIR /src
COPY pyproject.toml README.md ./
COPY rayside ./rayside
COPY operator ./operator
COPY localkube ./localkube
COPY submitter ./submitter
COPY autoscaler_provider ./autoscaler_provider
RUN pip install --no-cache-dir '.[operator]' && rm -rf /src
WORKDIR /
USER 65532:65532
ENTRYPOINT ["rayside"]
CMD ["operator", "--leader-elect"]
