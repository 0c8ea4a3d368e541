"""`make run`: the whole embedded alliance on loopback, until Ctrl-C.

Starts nx-27017 (data under var/mongo, kept between runs), the Tansu broker
(memory only), then for every school of the alliance configuration each
service's web process (gunicorn) and worker. SIGINT or SIGTERM stops
everything it started, services first, then the servers.

Environment (all optional): VAR_DIR, MONGO_PORT (27017), KAFKA_PORT (9092),
PORT_BASE_<SCHOOL> e.g. PORT_BASE_ECNU_CTO=8100 (catalog +0, courses +1,
faculty +2, visits +3, the school's dev identity provider +9), WEB_WORKERS (2),
SERVICES (the services to start), MAIL_PORT (8025: the development SMTP server, which keeps
every mail as a `.eml` file in var/mail/).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

from devstack import idp, seed, servers
from shared.auth import ensure_dev_keys
from shared.config import REPO_ROOT, load_alliance
from shared.worker import stop_on_signals

# the services that exist so far, in start order
SERVICES = ("courses", "faculty", "visits", "catalog")
# Ctrl-C must end `make run` within 5 s: the services get this long together, nx-27017 this long after;
# within that, a worker's loops get WORKER_STOP_SECONDS to return and gunicorn lets requests in flight end
# for WEB_GRACEFUL_SECONDS (local requests are short; production's values come from docker-compose.yml)
SERVICES_STOP_SECONDS = 2.5
MONGO_STOP_SECONDS = 1.0
WORKER_STOP_SECONDS = 1.0
WEB_GRACEFUL_SECONDS = 1


def _port_env(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def runtime_alliance(base_config: Path, out: Path, host: str) -> dict:
    """The alliance configuration with this run's ports (PORT_BASE_<SCHOOL> overrides)."""
    raw = json.loads(base_config.read_text(encoding="utf-8"))
    for school in raw["schools"]:
        env_name = "PORT_BASE_" + school["id"].upper().replace("-", "_")
        school["port_base"] = _port_env(env_name, school.get("port_base", 0))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(raw, indent=2, ensure_ascii=False), encoding="utf-8")
    return raw


def main() -> int:
    var_dir = Path(os.environ.get("VAR_DIR") or REPO_ROOT / "var").resolve()
    log_dir = var_dir / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    mongo_port = _port_env("MONGO_PORT", 27017)
    kafka_port = _port_env("KAFKA_PORT", 9092)
    mail_port = _port_env("MAIL_PORT", 8025)
    web_workers = _port_env("WEB_WORKERS", 2)
    services = tuple(s for s in (os.environ.get("SERVICES") or ",".join(SERVICES)).split(",") if s)
    keys_dir = Path(os.environ.get("KEYS_DIR") or var_dir / "keys")
    base_config = Path(os.environ.get("ALLIANCE_CONFIG") or REPO_ROOT / "config" / "alliance.json")
    alliance_path = var_dir / "alliance.json"
    runtime_alliance(base_config, alliance_path, servers.HOST)
    schools = load_alliance(alliance_path, servers.HOST)
    ensure_dev_keys(keys_dir, [s.id for s in schools])

    stop = stop_on_signals()

    backing: list[servers.Proc] = []  # nx-27017, then the broker
    running: list[servers.Proc] = []  # the services' web processes and workers
    idps: list[servers.Proc] = []  # each school's dev identity provider (memory only)
    try:
        for port, what in ((mongo_port, "MONGO_PORT"), (kafka_port, "KAFKA_PORT"), (mail_port, "MAIL_PORT")):
            if servers.port_open(port):
                raise RuntimeError(f"port {port} is in use; set {what} to a free port")
        say(f"starting nx-27017 on {servers.HOST}:{mongo_port} (data in {var_dir / 'mongo'})")
        backing.append(servers.start_mongo(var_dir / "mongo", mongo_port, log_dir, stop))
        say(f"starting the Tansu broker on {servers.HOST}:{kafka_port} (memory only)")
        backing.append(servers.start_broker(kafka_port, log_dir, stop))
        say(f"starting the development mail server on {servers.HOST}:{mail_port} (each mail: a .eml file in "
            f"{var_dir / 'mail'})")
        backing.append(servers.start_mail(mail_port, var_dir / "mail", log_dir, stop))
        idp_ports = {}
        if "catalog" in services:
            for school in schools:
                # one dev identity provider per school, as each school has its own in production
                idp_ports[school.id] = int(school.urls["catalog"].rsplit(":", 1)[1]) + idp.IDP_PORT_OFFSET
                say(f"starting {school.id}'s dev identity provider on {idp.issuer(idp_ports[school.id])}")
                idps.append(idp.start_idp(school.id, idp_ports[school.id], log_dir, stop))
        for school in schools:
            for service in services:
                if stop.is_set():
                    raise servers.Stopped("stopped during start-up")
                port = int(school.urls[service].rsplit(":", 1)[1])
                extra = {"WORKER_STOP_SECONDS": str(WORKER_STOP_SECONDS), **dev_mail_env(school.id, mail_port)}
                if service == "catalog":
                    extra.update(idp.idp_env(school.id, idp_ports[school.id], keys_dir))
                env = servers.service_env(school.id, service, mongo_port, kafka_port, var_dir, alliance_path,
                                          keys_dir, extra)
                running.append(servers.start_worker(school.id, service, env, log_dir))
                running.append(servers.start_web(school.id, service, port, env, log_dir, web_workers, stop,
                                                 graceful_timeout=WEB_GRACEFUL_SECONDS))
                say(f"{school.id} {service}: {school.urls[service]}  (docs: {school.urls[service]}/docs)")
        if "courses" in services:
            # first start only: a school whose courses service holds nothing gets a sample catalog.
            # in a thread, so that Ctrl-C does not wait for it: its writes are idempotent
            seeding = threading.Thread(target=seed.seed, args=(schools, keys_dir, services, say), daemon=True)
            seeding.start()
            while seeding.is_alive():
                if stop.wait(0.2):
                    raise servers.Stopped("stopped while seeding")
        if "catalog" in services:
            for school in schools:
                say(f"open {school.urls['catalog']}/ to browse {school.id}'s catalog (add ?lang=zh for Chinese); "
                    f"\"Sign in\" as coordinator@{school.id}, faculty@{school.id} or student@{school.id}")
        say("ready. Get a token: make token SCHOOL=ecnu-cto ROLE=coordinator. Logs: " + str(log_dir))
        say("Ctrl-C stops everything.")
        while not stop.wait(1.0):
            for proc in backing + idps + running:
                if not proc.alive():
                    say(f"{proc.name} exited with {proc.popen.returncode}; its log: {proc.log_path}")
                    raise RuntimeError(f"{proc.name} stopped unexpectedly")
        return 0
    except servers.Stopped:
        return 0
    except (RuntimeError, TimeoutError) as exc:
        say(f"error: {exc}")
        return 1
    finally:
        say("stopping...")
        began = time.monotonic()
        # the dev identity providers keep nothing: killed at once, like the broker
        for proc in idps:
            proc.signal_group(signal.SIGKILL)
        # services first, so nothing writes to a server that is going away; all at once, with one
        # deadline: what is still running then is killed, which loses nothing (an interrupted relay
        # batch is sent again, an uncommitted event is read again)
        killed = servers.stop_all(running, SERVICES_STOP_SECONDS)
        # the broker is memory only, and takes seconds to stop with clients connected: killed.
        # nx-27017 gets SIGTERM (its data survives SIGKILL too)
        for proc in backing[1:]:
            proc.signal_group(signal.SIGKILL)
        killed += servers.stop_all(backing[:1], MONGO_STOP_SECONDS)
        servers.stop_all(backing[1:] + idps, 0)
        seconds = time.monotonic() - began
        if killed:
            say(f"stopped. {len(killed)} processes were killed after the deadline: "
                + ", ".join(p.name for p in killed) + f" ({seconds:.1f}s)")
        else:
            say(f"stopped. ({seconds:.1f}s)")


def dev_mail_env(school: str, mail_port: int) -> dict:
    """Mail of the embedded stack: the development SMTP server, and one coordinator address per school."""
    return {"SMTP_HOST": servers.HOST, "SMTP_PORT": str(mail_port), "MAIL_SENDER": f"alliance-catalog@{school}.example.edu",
            "COORDINATOR_EMAILS": f"coordinator@{school}.example.edu"}


def say(message: str) -> None:
    print(f"[make run] {message}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
