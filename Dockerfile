# The pipeline's container image: the default image of every Kubeflow task.
# Same pinned stack as local runs (requirements.lock), the project installed
# at /pipeline (kubeflow_runner.IMAGE_ROOT) with the vendored MNIST files, so
# the compiled spec's `run_fn` and component classes import from the image.
#
#   make image IMAGE=registry.example.com/mnist-dae-pipeline:TAG
FROM python:3.10.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m pip install --no-cache-dir uv==0.13.9

WORKDIR /pipeline

# The locked stack first: a layer that changes only with the lock file.
COPY requirements.lock ./
RUN uv pip install --system --no-cache --require-hashes -r requirements.lock

# Then the project (editable: data/ and schemas/ stay beside the code).
COPY pyproject.toml README.md pipeline_config.py ./
COPY pipeline/ pipeline/
COPY components/ components/
COPY schemas/ schemas/
COPY data/ data/
RUN uv pip install --system --no-deps -e . && dae-pipeline --help > /dev/null

# The project's entrypoint (TFX's, made to work with the open-source KFP v2
# driver: pipeline/kfp_entrypoint.py) is the command of every task; the spec
# sets it, this is the same entry point for running the image by hand.
ENTRYPOINT ["python", "-m", "pipeline.kfp_entrypoint"]
