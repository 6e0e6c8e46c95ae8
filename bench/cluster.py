"""Mixref laid out as a deployment, on this machine's loopback: gunicorn and Celery workers as separate
processes, each with an environment of its own (queues, media folder, temporary folder), their output in
log files. bench/throughput.py and tests/integration/test_scale_out.py use it; ./scripts/start.sh is the
one-machine form of the same.

Every child is started in a session of its own and stopped with its whole process group.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

REPO_DIR = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 120
STOP_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    log_path: Path

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class Cluster:
    """``env``: the environment every process shares (database, broker, storage); ``folder``: where the logs go."""

    def __init__(self, env: dict[str, str], folder: Path):
        self.env = env
        self.folder = folder
        self.children: list[Child] = []
        self.url: str | None = None

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Child:
        log_path = self.folder / f"{name}.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(argv, cwd=REPO_DIR, env={**self.env, **env}, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        child = Child(name, process, log_path)
        self.children.append(child)
        return child

    def migrate(self) -> None:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO_DIR, env=self.env,
                       check=True, timeout=START_TIMEOUT_S)

    def web(self, *, threads: int = 8, workers: int = 1, **env: str) -> str:
        """gunicorn (``workers`` processes) on a free loopback port; returns its URL once /healthz answers."""
        port = free_port()
        # Keep-alive 5 s, above a client's 2 s poll: at gunicorn's default 2 s, polls raced the server closing.
        child = self._spawn("web", [sys.executable, "-m", "gunicorn", "webapp.config.wsgi", "--bind",
                                    f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads),
                                    "--timeout", "120", "--keep-alive", "5", "--no-control-socket"], env)
        self.url = f"http://127.0.0.1:{port}"
        self._wait(child, lambda: _healthy(self.url + "/healthz"))
        return self.url

    def worker(self, name: str, *, queues: str, concurrency: int = 1, **env: str) -> Child:
        """A Celery worker (node ``name@host``) serving ``queues``; returns once it says it is ready."""
        child = self._spawn(name, [sys.executable, "-m", "celery", "-A", "workers", "worker", "--hostname",
                                   f"{name}@%h", "--queues", queues, "--pool", "prefork", "--concurrency",
                                   str(concurrency), "--prefetch-multiplier", "1", "--loglevel", "INFO",
                                   "--without-gossip", "--without-mingle"], env)
        self._wait(child, lambda: " ready." in child.log)
        return child

    def _wait(self, child: Child, ready) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready():
            if child.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{child.name} did not start:\n{child.log[-3000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        """SIGTERM to every child's group (a worker finishes its running job), then SIGKILL after STOP_TIMEOUT_S."""
        for child in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.process.pid, signal.SIGTERM)
        for child in self.children:
            try:
                child.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait(10)

    def __enter__(self) -> Cluster:
        self.folder.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _healthy(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.RequestException:
        return False


@contextlib.contextmanager
def redis_server(folder: Path):
    """A redis-server on a free loopback port that stores nothing on disk; yields its URL."""
    port = free_port()
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
                               "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True).stdout.strip() \
                != "PONG":
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(10)


@contextlib.contextmanager
def postgres_server():
    """A throwaway PostgreSQL cluster (Debian's packages) on a free loopback port, durability off, with one
    database, in a temporary folder of its own (which the cluster's owner can reach); yields its URL. As root
    the cluster belongs to the ``postgres`` user."""
    import pwd
    import shutil
    import tempfile
    import uuid

    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda path: int(path.parts[-3]))
    if not found:
        raise RuntimeError("PostgreSQL is not installed (Debian package postgresql)")
    bin_dir, port, password = found[-1].parent, free_port(), uuid.uuid4().hex
    folder = Path(tempfile.mkdtemp(prefix="mixref-bench-pg-"))
    (folder / "pw").write_text(password)
    as_owner: list[str] = []
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        as_owner = ["runuser", "-u", "postgres", "--"]
        for path in (folder, folder / "pw"):
            os.chown(path, owner.pw_uid, owner.pw_gid)

    def run(*argv: str) -> None:
        subprocess.run([*as_owner, *argv], cwd=folder, check=True, capture_output=True, timeout=START_TIMEOUT_S)

    data = folder / "data"
    run(str(bin_dir / "initdb"), "-D", str(data), "-U", "mixref", f"--pwfile={folder / 'pw'}", "--auth-local=trust",
        "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync")
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"), "-w", "-o",
        f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off", "start")
    try:
        # Over the socket, which trusts local users; the app logs in over TCP with the password.
        run(str(bin_dir / "createdb"), "-h", str(folder), "-p", str(port), "-U", "mixref", "mixref")
        yield f"postgres://mixref:{password}@127.0.0.1:{port}/mixref"
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)
