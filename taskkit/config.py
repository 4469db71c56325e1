"""One typed settings object per process, read once from ``TRANSMUTE_*`` environment variables.

Every setting is listed in the README's configuration table; keep the two in step.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRANSMUTE_", extra="ignore")

    # Messaging and service addresses
    nats_url: str = "nats://127.0.0.1:4222"  # a cluster: every node, comma-separated
    nats_replicas: int = 1  # copies of every stream and bucket: min(3, cluster size)
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 50051
    media_addr: str = "127.0.0.1:50051"
    tracks_addr: str | None = None
    intelligence_addr: str | None = None

    # gRPC TLS (PEM file paths; empty = plaintext). The gRPC ports trust `transmute-project`
    # metadata, so outside one trusted network they take mutual TLS: a server with a CA set
    # requires a client certificate signed by it.
    grpc_tls_cert: str = ""  # this server's certificate (with grpc_tls_key: serve TLS)
    grpc_tls_key: str = ""
    grpc_tls_ca: str = ""  # CA of client certificates; set = client certificates required
    grpc_client_cert: str = ""  # this process's client certificate towards gRPC servers
    grpc_client_key: str = ""
    grpc_client_ca: str = ""  # CA of server certificates; any client setting set = TLS channels

    # HTTP gateway
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    public_url: str = ""  # base of signed links; default http://localhost:<http_port>
    api_key: SecretStr | None = None  # a single dev key for project "default"
    api_keys_file: Path | None = None  # JSON {"<key>": "<project>", ...}
    max_body_bytes: int = 1_048_576
    max_header_bytes: int = 16_384  # request line + headers; past it 431 before the body is read
    max_header_count: int = 100
    max_metadata_depth: int = 5  # nesting of objects/arrays in a task's metadata
    max_metadata_bytes: int = 16_384  # a task's metadata as compact JSON
    request_timeout_seconds: float = 10.0  # a whole API call, retries of an unavailable service included

    # The create path
    sweep_after_seconds: float = 10.0  # a create unfinished this long is finished by the sweeper
    sweep_interval_seconds: float = 5.0

    # Storage and signed links
    storage_backend: str = "file"  # file | s3 | nats
    storage_dir: Path = Path("var/storage")
    s3_endpoint_url: str = ""  # any S3-compatible endpoint; empty = AWS's endpoint for s3_region
    s3_region: str = "us-east-1"
    s3_bucket: str = "transmute"
    s3_access_key_id: str = ""  # empty (with the secret): the default AWS credential chain
    s3_secret_access_key: SecretStr = SecretStr("")
    s3_addressing_style: str = "path"  # path | virtual | auto
    s3_create_bucket: bool = True  # create s3_bucket at start-up when missing
    s3_multipart_threshold_bytes: int = 16 * 1024**2  # files this large go up in parts
    s3_part_size_bytes: int = 8 * 1024**2  # S3's minimum is 5 MiB; bounds the memory of one upload
    s3_presigned_downloads: bool = False  # single-file links answer 307 to a presigned S3 GET
    s3_timeout_seconds: float = 30.0  # connect and read timeout of every S3 call
    nats_object_bucket: str = "transmute"  # the JetStream object store of the nats backend
    nats_object_chunk_bytes: int = 128 * 1024  # chunk size of objects written to it
    signing_secret: SecretStr = SecretStr("")
    link_ttl_seconds: int = 86_400

    # Workers
    role: str = "all"  # api | worker | all
    worker_concurrency: int = 2
    ack_wait_seconds: float = 30.0
    max_deliver: int = 3
    kinds: str = ""  # comma-separated kinds this worker runs; empty = every kind of its family
    kind_timeouts: dict[str, float] = {}  # kind -> whole-handler budget in s, over the kind's default
    upload_concurrency: int = 8  # files of one package uploaded at once
    shutdown_grace_seconds: float = 20.0
    work_dir: Path | None = None  # per-task temp dirs; default the system temp dir
    ffmpeg_sandbox: str = "auto"  # auto | required | off: ffmpeg as a per-task uid (taskkit/media/sandbox.py)
    sandbox_uid_base: int = 61184  # first uid of the range leased to ffmpeg runs (systemd's dynamic range)
    sandbox_uid_count: int = 4096

    # Input safety limits
    allow_private_urls: bool = False
    max_input_bytes: int = 2 * 1024**3
    max_duration_seconds: float = 4 * 3600.0
    max_pixels: int = 64_000_000
    fetch_connect_timeout_seconds: float = 10.0
    fetch_read_timeout_seconds: float = 30.0
    fetch_total_timeout_seconds: float = 3_600.0
    max_redirects: int = 5

    # Intelligence models (docs/models.md), loaded once per worker process
    model_cache_dir: Path = Path("var/models")  # models assembled from packages (the joined Whisper file)
    whisper_model_dir: Path | None = None  # a local CTranslate2 Whisper directory; default the packaged base
    whisper_device: str = "cpu"  # cpu | cuda | auto
    whisper_compute_type: str = "auto"  # auto: int8 on CPU, float16 on CUDA; or any CTranslate2 type
    whisper_threads: int = 0  # 0: the cores available to the process / worker_concurrency, at least 1
    nsfw_max_frames: int = 120  # frames of a video the nsfw model looks at (1 per second + scene cuts)
    llm_url: str = ""  # an OpenAI-compatible chat endpoint for summary titles/descriptions; empty = offline
    llm_model: str = ""
    llm_api_key: SecretStr | None = None
    llm_timeout_seconds: float = 20.0

    ffmpeg_path: str = "ffmpeg"
    log_level: str = "INFO"

    progress_interval_seconds: float = 0.5  # minimum gap between progress writes of one task

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://localhost:{self.http_port}").rstrip("/")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
