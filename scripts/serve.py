"""Runs Mixref's web server (gunicorn), one Celery worker (both queues) and Celery beat side by side;
start.sh calls this.

Each child gets its own process group, so a Ctrl-C in the terminal reaches only this
supervisor, which stops them in order: the first Ctrl-C lets the worker finish its running job
(warm shutdown), a second one kills all at once. If any child dies, the others are stopped and
the exit status is 1. Settings come from the environment (README.md): MIXREF_HOST, PORT,
MIXREF_WORKER_CONCURRENCY, DJANGO_SETTINGS_MODULE.
"""
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

READY_TIMEOUT_S = 90
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Runs in the child before exec: if the supervisor is killed outright, the child is stopped too."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(name: str, argv: list[str]) -> subprocess.Popen:
    child = subprocess.Popen(argv, process_group=0, preexec_fn=die_with_parent)
    print(f"==> {name}: pid {child.pid}: {' '.join(argv[2:])}", flush=True)
    return child


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def is_healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def main() -> int:
    host = os.environ.get("MIXREF_HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    concurrency = os.environ.get("MIXREF_WORKER_CONCURRENCY", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.config.settings.local")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    if not port_is_free(host, port):
        print(f"==> port {port} on {host} is taken; set PORT to another one", file=sys.stderr)
        return 1

    python = sys.executable
    children = {
        "web": spawn(
            "web",
            [python, "-m", "gunicorn", "webapp.config.wsgi", "--bind", f"{host}:{port}",
             # Keep-alive 5 s, above a 2 s poll: at gunicorn's default 2 s, polls raced the server closing.
             "--workers", "1", "--threads", "8", "--timeout", "120", "--keep-alive", "5", "--access-logfile", "-",
             "--no-control-socket"],
        ),
        "worker": spawn(
            "worker",
            # One machine: this worker serves both queues (webapp.config.celery).
            [python, "-m", "celery", "-A", "workers", "worker", "--pool", "prefork", "--queues", "gpu,default",
             "--concurrency", concurrency, "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
        ),
        # The periodic tasks. A process of its own rather than the worker's -B: with -B, one of the worker's
        # processes outlived it as a zombie (seen where PID 1 reaps nothing), so Ctrl-C did not stop everything.
        "beat": spawn("beat", [python, "-m", "celery", "-A", "workers", "beat", "--loglevel", "INFO"]),
    }

    stop_requests = 0

    def request_stop(signum, frame):
        nonlocal stop_requests
        stop_requests += 1
        if stop_requests == 1:
            print("\n==> stopping; the worker finishes its running job (Ctrl-C again stops at once)", flush=True)
            for child in children.values():
                if child.poll() is None:
                    child.terminate()
        else:
            for child in children.values():
                if child.poll() is None:
                    os.killpg(child.pid, signal.SIGKILL)

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    visible_host = "127.0.0.1" if host in {"0.0.0.0", ""} else host
    url = f"http://{visible_host}:{port}/"
    started_s = time.monotonic()
    announced = failed = False
    while any(child.poll() is None for child in children.values()):
        if not stop_requests:
            dead = [name for name, child in children.items() if child.poll() is not None]
            if dead:
                print(f"==> {', '.join(dead)} exited unexpectedly; stopping", file=sys.stderr, flush=True)
                failed = True
                request_stop(None, None)
            elif not announced and is_healthy(url + "healthz"):
                print(f"==> Mixref is running at {url} (Ctrl-C stops it)", flush=True)
                announced = True
            elif not announced and time.monotonic() - started_s > READY_TIMEOUT_S:
                print(f"==> no answer from {url} within {READY_TIMEOUT_S} s; stopping", file=sys.stderr, flush=True)
                failed = True
                request_stop(None, None)
        time.sleep(0.2)
    print("==> stopped", flush=True)
    return 1 if failed else 0

if __name__ == "__main__":
    sys.exit(main())
