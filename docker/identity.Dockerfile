# syntax=docker/dockerfile:1
# KAYA787 identity: `python -m kaya787_identity`, serving 127.0.0.1:8101 for its Dapr sidecar.
# Build from the repository root (the uv workspace and its lock file):
#   docker build -f docker/identity.Dockerfile -t ghcr.io/kaya787/identity:0.1.0 .
# Dependencies come from uv.lock only (--frozen); the image runs as uid 10001 and works
# with a read-only root filesystem (nothing is written outside /tmp).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG UV_VERSION=0.13.8
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /src
# The workspace manifests and the lock first, so the dependency layer is cached.
COPY pyproject.toml uv.lock ./
COPY libs/kit/pyproject.toml libs/kit/
COPY libs/contracts/pyproject.toml libs/contracts/
COPY apps/identity/pyproject.toml apps/identity/
COPY apps/accounts/pyproject.toml apps/accounts/
COPY apps/transactions/pyproject.toml apps/transactions/
COPY apps/analytics/pyproject.toml apps/analytics/
COPY apps/partner/pyproject.toml apps/partner/
COPY apps/ops/pyproject.toml apps/ops/
COPY tools/launcher/pyproject.toml tools/launcher/
RUN uv sync --frozen --no-dev --no-install-workspace --package kaya787-identity
COPY libs/kit/src libs/kit/src
COPY libs/contracts/src libs/contracts/src
COPY apps/identity/src apps/identity/src
RUN uv sync --frozen --no-dev --no-editable --package kaya787-identity

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    APP_ID=identity \
    APP_PORT=8101
USER 10001:10001
ENTRYPOINT ["python", "-m", "kaya787_identity"]
