# Transmute images: one target per service, all from one build of the project.
#
#   docker build --target gateway          -t transmute-gateway:0.1.0 .
#   docker build --target media            -t transmute-media:0.1.0 .
#   docker build --target tracks           -t transmute-tracks:0.1.0 .
#   docker build --target intelligence     -t transmute-intelligence:0.1.0 .      # models baked in
#   docker build --target intelligence-gpu -t transmute-intelligence-gpu:0.1.0 .  # + CUDA libraries
#
# Every family image runs both roles: `--role api` (gRPC, health on the same port) or
# `--role worker` (pulls its kinds from JetStream). Settings are TRANSMUTE_* variables
# (README, "Configuration"); the ones below only fit the container's layout.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: one virtual environment with the project and its runtime dependencies ----------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first (their own layer, rebuilt only when pyproject.toml changes). grpcio-tools
# is installed into the same environment, so the generated code matches the grpcio/protobuf
# it runs with, and removed again once the protos are generated.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt "grpcio-tools>=1.66,<2"
COPY protos protos
COPY scripts/gen_protos.sh scripts/gen_protos.sh
RUN PYTHON=/opt/venv/bin/python bash scripts/gen_protos.sh
COPY README.md ./
COPY taskkit taskkit
COPY gateway gateway
COPY media_service media_service
COPY intelligence_service intelligence_service
COPY tracks_service tracks_service
RUN pip install . && pip uninstall -y grpcio-tools

# ---- runtime: what every service image shares ----------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
# ffmpeg/ffprobe from Debian (the versions the tests run); util-linux's setpriv is already in
# the base image.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ffmpeg \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 transmute \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/transmute --no-create-home transmute \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/transmute /var/lib/transmute/storage
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TRANSMUTE_GRPC_HOST=0.0.0.0 \
    TRANSMUTE_HTTP_HOST=0.0.0.0 \
    TRANSMUTE_STORAGE_DIR=/var/lib/transmute/storage
WORKDIR /var/lib/transmute
# Not root: the ffmpeg sandbox (per-task uids, taskkit/media/sandbox.py) needs CAP_SETUID and so is
# off in these images; the container is the boundary instead (see deploy/k8s securityContext).
USER 10001:10001

# ---- service targets ------------------------------------------------------------------------
FROM runtime AS gateway
EXPOSE 8080
ENTRYPOINT ["python", "-m", "gateway"]

FROM runtime AS media
EXPOSE 50051
ENTRYPOINT ["python", "-m", "media_service"]
CMD ["--role", "all"]

FROM runtime AS tracks
EXPOSE 50051
ENTRYPOINT ["python", "-m", "tracks_service"]
CMD ["--role", "all"]

# The models are baked in: the Whisper halves are joined into the model cache and both models
# are checked against their pinned SHA-256 and loaded once here (docs/models.md), so a worker
# starts without a 145 MB join and a bad wheel fails the build, not a pod.
FROM runtime AS intelligence
ENV TRANSMUTE_MODEL_CACHE_DIR=/opt/transmute/models
USER root
RUN install -d -o 10001 -g 10001 /opt/transmute/models
USER 10001:10001
RUN python -c "from taskkit.config import Settings; from intelligence_service import nsfw_model, whisper_model; settings = Settings(); whisper_model.load_whisper(settings).close(); nsfw_model.load_nsfw(settings)"
EXPOSE 50051
ENTRYPOINT ["python", "-m", "intelligence_service"]
CMD ["--role", "all"]

# Speech on a GPU node: CTranslate2's wheel has CUDA built in but loads cuBLAS and cuDNN 9 at
# run time; they come as NVIDIA's wheels (faster-whisper's documented way). The driver is the
# node's (NVIDIA container toolkit). Run it with TRANSMUTE_WHISPER_DEVICE=cuda (deploy/k8s/gpu-speech).
FROM intelligence AS intelligence-gpu
USER root
RUN pip install --no-cache-dir "nvidia-cublas-cu12>=12.4,<13" "nvidia-cudnn-cu12>=9,<10"
ENV LD_LIBRARY_PATH=/opt/venv/lib/python3.11/site-packages/nvidia/cublas/lib:/opt/venv/lib/python3.11/site-packages/nvidia/cudnn/lib
USER 10001:10001
