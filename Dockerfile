# syntax=docker/dockerfile:1
# Images of the control plane and of workers, built from this repository (compose.yaml builds both):
#   docker build --target server -t runbatch-server .
#   docker build --target worker -t runbatch-worker .
# Where no registry is reachable, pass a local base image with python3.11 and its venv module:
#   --build-arg PYTHON_IMAGE=<image>  (e.g. debootstrap bookworm --include=python3,python3-venv + docker import)

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS source
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RUNBATCH_HOME=/var/lib/runbatch \
    PATH=/opt/venv/bin:$PATH
# A virtual environment: the same steps on python:3.11-slim and on a Debian base with python3-venv.
RUN python3 -m venv /opt/venv \
    && useradd --create-home --uid 10001 runbatch \
    && mkdir -p /var/lib/runbatch \
    && chown runbatch:runbatch /var/lib/runbatch
WORKDIR /opt/runbatch
COPY pyproject.toml README.md ./
COPY runbatch ./runbatch
COPY server ./server
COPY worker ./worker
COPY migrations ./migrations

# The control plane: REST API, metadata, SQL statements, dispatch, finalization, the reaper.
FROM source AS server
RUN pip install ".[server]"
USER runbatch
EXPOSE 8080
CMD ["runbatch", "server", "--host", "0.0.0.0", "--port", "8080"]

# A worker: consumes shard messages of its pools and runs a runtime process per shard. EXTRAS
# adds model libraries to the runtimes (e.g. --build-arg EXTRAS=worker,runtime,sklearn,xgboost).
FROM source AS worker
ARG EXTRAS=worker,runtime,sklearn
RUN pip install ".[${EXTRAS}]"
USER runbatch
CMD ["runbatch", "worker"]
