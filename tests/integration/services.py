"""Real servers on loopback for the tests that prove the configured parts (test_real_services.py): a
throwaway PostgreSQL cluster from Debian's packages and moto's S3 server. Each lives in a temporary
folder of its own and is gone afterwards. Test modules import the fixtures they use."""
import functools
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
import psycopg
import pytest
import requests
from psycopg import sql

from .test_round_trip import free_port

START_TIMEOUT_S = 60
POSTGRES_ROOT = Path("/usr/lib/postgresql")


def missing(what: str) -> None:
    """scripts/test.sh installs every server these tests use: in CI a missing one is a failure."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing; scripts/test.sh installs it")
    pytest.skip(f"{what} is not installed (scripts/test.sh installs it)")


def postgres_bin_dir() -> Path | None:
    """The newest PostgreSQL's programs: Debian keeps them off PATH, under /usr/lib/postgresql/<version>/bin."""
    found = sorted(POSTGRES_ROOT.glob("*/bin/initdb"), key=lambda path: int(path.parts[-3]))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass
class PostgresServer:
    port: int
    user: str
    password: str

    def url(self, database: str) -> str:
        return f"postgres://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def database_create(self) -> str:
        """A new empty database; returns its URL (password login over TCP, as a deployment uses it)."""
        name = f"mixref_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL cluster on a free loopback port, its socket and data in a temporary folder.

    PostgreSQL refuses to run as root, so as root (CI) the cluster belongs to the ``postgres`` user
    that Debian's package creates. Durability is off: the cluster is thrown away.
    """
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        missing("PostgreSQL (Debian package postgresql)")
    server = PostgresServer(port=free_port(), user="mixref", password=uuid.uuid4().hex)
    folder = Path(tempfile.mkdtemp(prefix="mixref-pg-"))
    data, log, socket_dir, password_file = folder / "data", folder / "server.log", folder / "socket", folder / "pw"
    socket_dir.mkdir()
    password_file.write_text(server.password)
    as_owner: list[str] = []
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        as_owner = ["runuser", "-u", "postgres", "--"]
        for path in (folder, socket_dir, password_file):
            os.chown(path, owner.pw_uid, owner.pw_gid)

    def run(*argv: str) -> subprocess.CompletedProcess:
        # cwd: the owner may not be allowed into the caller's working directory.
        return subprocess.run([*as_owner, *argv], cwd=folder, capture_output=True, text=True, timeout=START_TIMEOUT_S)

    try:
        initdb = run(str(bin_dir / "initdb"), "-D", str(data), "-U", server.user, f"--pwfile={password_file}",
                     "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync")
        assert initdb.returncode == 0, f"initdb failed:\n{initdb.stdout}{initdb.stderr}"
        options = (f"-c listen_addresses=127.0.0.1 -p {server.port} -k {socket_dir} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        started = run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w",
                      "-t", str(START_TIMEOUT_S), "start")
        if started.returncode != 0:
            pytest.fail(f"PostgreSQL did not start:\n{started.stdout}{started.stderr}\n"
                        f"{log.read_text() if log.exists() else ''}")
        yield server
    finally:
        if (data / "postmaster.pid").exists():
            run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """The URL of a fresh database of this test's own on the session's PostgreSQL."""
    return postgres_server.database_create()


@dataclass
class S3Server:
    endpoint_url: str
    bucket: str

    @property
    def env(self) -> dict[str, str]:
        """The settings variables that point the app's storage at this bucket."""
        return {
            "AWS_STORAGE_BUCKET_NAME": self.bucket,
            "AWS_S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_S3_REGION_NAME": "us-east-1",
            "AWS_ACCESS_KEY_ID": "mixref-test",
            "AWS_SECRET_ACCESS_KEY": "mixref-test-secret",
        }

    @functools.cached_property
    def client(self):
        env = self.env
        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=env["AWS_S3_REGION_NAME"],
                            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])

    def keys(self) -> list[str]:
        listing = self.client.list_objects_v2(Bucket=self.bucket)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()


@pytest.fixture
def s3_server(tmp_path):
    """moto's S3 server (moto[server]) on a free loopback port, in a process of its own, with an empty bucket.

    Its own process keeps it apart from tests that use moto's in-process mock_aws. It speaks S3 over
    HTTP but checks neither signatures nor the expiry of presigned URLs (RELIABILITY.md).
    """
    binary = Path(sys.executable).with_name("moto_server")
    if not binary.exists():
        missing("moto_server (moto[server] in requirements-dev.txt)")
    port = free_port()
    endpoint_url = f"http://127.0.0.1:{port}"
    with (tmp_path / "moto.log").open("w") as log:
        server = subprocess.Popen([str(binary), "-H", "127.0.0.1", "-p", str(port)], stdout=log,
                                  stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                requests.get(endpoint_url, timeout=2)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail(f"moto_server did not start:\n{(tmp_path / 'moto.log').read_text()}")
                time.sleep(0.1)
        s3 = S3Server(endpoint_url, "mixref-media")
        s3.client.create_bucket(Bucket=s3.bucket)
        yield s3
    finally:
        server.terminate()
        server.wait(10)
