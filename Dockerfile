# syntax=docker/dockerfile:1
# The kfp-operator image: `make image` (docker or buildah), or
#   docker build --build-arg VERSION=0.1.0 -t <registry>/kfp-operator:0.1.0 .
#
# The builder stage turns the project and its dependencies into wheels and installs them into a
# virtual environment; the final stage copies only that environment onto the same Python base,
# with no compilers, no pip and no source tree, and runs as an unprivileged numeric user (so
# Kubernetes can verify runAsNonRoot). Only the product's packages are in the build context: the
# local stack (kfp_devstack), the tests and their dependencies never reach the image.
#
# PYTHON_IMAGE is any Debian-based image with python3 and its venv module: the official slim
# image by default (pin it by digest for reproducible builds); the tests build on a Debian
# bookworm root filesystem with Debian's python3 (see tests/image/).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
# Behind a TLS-intercepting proxy, the builder passes its CA bundle as the secret
# ca-certificates (hack/build-image.sh does): it is used for the downloads and kept nowhere.
# pip for the build only, current and in its own environment: the official images ship one,
# Debian's python3 brings an older one with its venv module.
RUN --mount=type=secret,id=ca-certificates,target=/run/secrets/ca-certificates.crt \
    if [ -s /run/secrets/ca-certificates.crt ]; then export PIP_CERT=/run/secrets/ca-certificates.crt; fi \
 && python3 -m venv /opt/build \
 && /opt/build/bin/pip install --quiet --upgrade pip
WORKDIR /src
COPY pyproject.toml README.md ./
COPY controller/ controller/
COPY reconcilers/ reconcilers/
COPY kfp_operator/ kfp_operator/
# Wheels of the project and of every runtime dependency (no extras), then an install that may
# use nothing else.
RUN --mount=type=secret,id=ca-certificates,target=/run/secrets/ca-certificates.crt \
    if [ -s /run/secrets/ca-certificates.crt ]; then export PIP_CERT=/run/secrets/ca-certificates.crt; fi \
 && /opt/build/bin/pip wheel --wheel-dir /wheels .
# Two things go after the install: the kfp-devstack command, which the project declares but
# whose package is not in the image, and kubernetes.aio, the Kubernetes client's asyncio twin
# (a third of the environment's size), which the operator never imports.
RUN python3 -m venv --without-pip /opt/kfp-operator \
 && /opt/build/bin/pip --python /opt/kfp-operator/bin/python install --no-index --find-links /wheels kfp-operator \
 && rm -f /opt/kfp-operator/bin/kfp-devstack \
 && rm -rf /opt/kfp-operator/lib/python3*/site-packages/kubernetes/aio \
 && /opt/kfp-operator/bin/kfp-operator --version

FROM ${PYTHON_IMAGE}
ARG VERSION=""
LABEL org.opencontainers.image.title="kfp-operator" \
      org.opencontainers.image.description="Runs Kubeflow Pipelines runs declared as Kubernetes Run resources" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# The runtime needs no package tooling (the official images ship pip; Debian's python3 does not).
RUN if python3 -m pip --version >/dev/null 2>&1; then \
      PIP_ROOT_USER_ACTION=ignore python3 -m pip uninstall --yes --quiet pip setuptools wheel; \
    fi
COPY --from=builder /opt/kfp-operator /opt/kfp-operator
# The root filesystem is read-only in the chart: bytecode was compiled at install time and
# nothing is written at run time but to /tmp.
ENV PATH=/opt/kfp-operator/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# Metrics and health probes (config keys metrics.bindAddress and health.bindAddress).
EXPOSE 8080 8081
USER 65532:65532
ENTRYPOINT ["kfp-operator"]
