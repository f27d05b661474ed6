# The pipeline's container image: every Kubeflow task's image, and the
# Dataflow workers' image (--sdk_container_image) when the Beam steps run there.
# Same pinned stack as local runs, the project installed at /pipeline
# (pipeline/kubeflow/compiler.py, IMAGE_ROOT) with the vendored MNIST files.
#
#   make image     IMAGE=registry.example.com/mnist-dae-pipeline:TAG      (CPU)
#   make image-gpu IMAGE=registry.example.com/mnist-dae-pipeline:TAG-gpu  (CUDA)
#
# LOCK picks the variant: requirements.lock (CPU TensorFlow) or
# requirements-gpu.lock (the same packages plus TensorFlow's CUDA 12 wheels,
# tensorflow[and-cuda] at the locked TensorFlow version; the node supplies the
# NVIDIA driver through the device plugin).
ARG BEAM_VERSION=2.78.0

# Dataflow starts workers with /opt/apache/beam/boot, which must be the
# image's ENTRYPOINT (cloud.google.com/dataflow/docs/guides/build-container-image;
# beam.apache.org "Modify an existing container image"): copied from Beam's
# SDK image of the locked Beam and Python versions.
FROM apache/beam_python3.13_sdk:${BEAM_VERSION} AS beam

# Debian 13: TFX 1.21's TFDV and ML Metadata wheels need glibc >= 2.39.
FROM python:3.13-slim-trixie
ARG LOCK=requirements.lock

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m pip install --no-cache-dir uv==0.13.9

COPY --from=beam /opt/apache/beam /opt/apache/beam

WORKDIR /pipeline

# The locked stack first: a layer that changes only with the lock file.
COPY requirements.lock requirements-gpu.lock ./
# --compile-bytecode: uv writes no .pyc by default and PYTHONDONTWRITEBYTECODE
# keeps Python from caching them, so without it every task would compile
# TF/TFX/Beam's sources on import (see scripts/setup.sh; uv's Docker guide,
# docs.astral.sh/uv/guides/integration/docker/#compiling-bytecode).
RUN uv pip install --system --no-cache --compile-bytecode --require-hashes -r ${LOCK}

# Then the project (editable: data/ and schemas/ stay beside the code).
COPY pyproject.toml README.md pipeline_config.py ./
COPY pipeline/ pipeline/
COPY components/ components/
COPY schemas/ schemas/
COPY data/ data/
RUN uv pip install --system --no-deps -e . && dae-pipeline --help > /dev/null

# Kubeflow tasks name their command in the compiled spec: the project's
# entrypoint (TFX's, made to work with the open-source KFP v2 driver:
# pipeline/kubeflow/entrypoint.py, `python -m pipeline.kubeflow.entrypoint`).
# The image's own ENTRYPOINT is Beam's worker boot, for Dataflow.
ENTRYPOINT ["/opt/apache/beam/boot"]
