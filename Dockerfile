# syntax=docker/dockerfile:1
# The kfp-operator image: `docker build -t <registry>/kfp-operator:<version> .`
#
# The builder stage turns the project and its dependencies into wheels and installs them into a
# virtual environment; the final stage copies only that environment onto a slim Python image,
# with no compilers, no pip and no source tree, and runs as an unprivileged numeric user (so
# Kubernetes can verify runAsNonRoot). Pin PYTHON_IMAGE by digest for reproducible builds.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY pyproject.toml README.md ./
COPY controller/ controller/
COPY reconcilers/ reconcilers/
COPY kfp_operator/ kfp_operator/
COPY kfp_devstack/ kfp_devstack/
# Wheels of the project and of every dependency, then an install that may use nothing else.
RUN python -m pip wheel --wheel-dir /wheels .
RUN python -m venv --without-pip /opt/kfp-operator \
 && python -m pip --python /opt/kfp-operator/bin/python install --no-index --find-links /wheels kfp-operator \
 && /opt/kfp-operator/bin/kfp-operator --version

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="kfp-operator" \
      org.opencontainers.image.description="Runs Kubeflow Pipelines runs declared as Kubernetes Run resources" \
      org.opencontainers.image.licenses="Apache-2.0"
# The runtime needs no package tooling; the operator runs from its own virtual environment.
RUN PIP_ROOT_USER_ACTION=ignore python -m pip uninstall --yes --quiet pip setuptools wheel
COPY --from=builder /opt/kfp-operator /opt/kfp-operator
ENV PATH=/opt/kfp-operator/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# Metrics and health probes (config keys metrics.bindAddress and health.bindAddress).
EXPOSE 8080 8081
USER 65532:65532
ENTRYPOINT ["kfp-operator"]
