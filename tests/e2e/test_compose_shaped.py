"""Services run the way docker-compose.yml resolves them, without Docker, against the embedded servers.

Each process gets what compose would give its container: the command and
environment of `docker-compose config` (over the Dockerfile's ENV), the
image's uid (setpriv), compose's tmpfs mounts, the secrets bind-mounted as
files under /run/secrets with the owner and mode `make secrets` gave them, and
compose's volume files, all in a private mount namespace (`unshare -m`), so
nothing changes outside it. Only what cannot be the same here is changed: the
MongoDB and Kafka hosts (the session's embedded servers, with this test's
database and topic prefixes), the listening port, and the service URLs of the
alliance file (loopback ports instead of compose's host names).

Authentication is off for the running processes, because the embedded servers
cannot check it: nx-27017 has no users (a URI with credentials fails), and the
Tansu broker does SCRAM only with `--authentication`, where its memory storage
cannot be given a user (creating one needs an authenticated client). What
compose gives each process for it is still checked, as the image's user in its
namespace: the password files are readable and the settings build the SASL and
MongoDB credentials from them (test_every_process_reads_its_passwords...).

Root is needed for the mount namespace and setpriv (CI runs as root).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from devstack import servers
from ops.secrets import make_secrets
from shared.auth import KeyRing, issue_token
from tests.kafkautil import cloud_event, read_until
from tests.samples import course
from tests.faculty_samples import profile
from tests.visit_samples import visit
from tests.waiting import wait_until

yaml = pytest.importorskip("yaml")
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
ECNU, SDU = "ecnu-cto", "sdu-sie"
SERVICES = ("courses", "faculty", "visits", "catalog")
WAIT = 60


def _require_root_tools():
    if os.geteuid() != 0:
        pytest.skip("mount namespaces and setpriv need root (CI runs as root)")
    for tool in ("unshare", "setpriv", "mount"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")


def resolved_compose() -> dict:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (make system-deps installs it)")
    result = subprocess.run([binary, "-f", str(REPO / "docker-compose.yml"), "config"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def image_user_and_env() -> tuple[int, int, dict]:
    """The uid and gid the image runs as, and its ENV, read from the Dockerfile."""
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    uid = int(re.search(r"useradd [^\n]*--uid (\d+)", text).group(1))
    gid = int(re.search(r"groupadd [^\n]*--gid (\d+)", text).group(1))
    env = {}
    lines = iter(text.splitlines())
    for line in lines:
        if not line.startswith("ENV "):
            continue
        # an ENV instruction with its continuation lines; comment lines inside are dropped, as docker does
        parts = [line[4:]]
        while parts[-1].rstrip().endswith("\\"):
            parts[-1] = parts[-1].rstrip()[:-1]
            following = next(lines)
            while following.strip().startswith("#"):
                following = next(lines)
            parts.append(following)
        for token in shlex.split(" ".join(parts)):
            name, _, value = token.partition("=")
            env[name] = value
    return uid, gid, env


def can_enter(path: Path, uid: int, gid: int) -> bool:
    """Whether uid:gid (no other groups) may search the folder."""
    st = path.stat()
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


class Container:
    """One compose service as a process in its own mount namespace."""

    def __init__(self, name: str, spec: dict, compose: dict, *, uid: int, gid: int, image_env: dict,
                 env: dict, port: int | None, files: dict, run_dir: Path, dirs: dict | None = None):
        self.name, self.spec, self.port, self.run_dir = name, spec, port, run_dir
        self.uid, self.gid = uid, gid
        self.log = run_dir / f"{name}.log"
        # docker's own variables, then the image's ENV, then compose's environment
        base = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME": name}
        self.env = {**base, **image_env, **{k: str(v) for k, v in spec["environment"].items()}, **env}
        self.files = files  # container path -> host file (secrets and volume files)
        self.dirs = dirs or {}  # container path -> host folder (named volumes, shared by the containers using one)
        self.proc = None
        self.command_override = None

    def command(self) -> list[str]:
        command = list(self.command_override or self.spec["command"])
        venv_bin = Path(sys.executable).parent
        # by absolute path: through PATH, uid 10001 may not find the venv's interpreter (see the module doc)
        command[0] = str(venv_bin / command[0]) if command[0] != "python" else sys.executable
        if "-b" in command:
            command[command.index("-b") + 1] = f"{servers.HOST}:{self.port}"
        return command

    def script(self) -> str:
        """The shell run inside the namespace: mounts as compose makes them, then the command as the image's user."""
        q = shlex.quote
        tmpfs = list(self.spec.get("tmpfs") or [])
        needed = _needed_paths()
        fresh = tmpfs + ["/run"]
        # folders above what the process needs that its uid cannot enter (a checkout or an interpreter in
        # /root): covered by a tmpfs it can enter, with what it needs bound back inside; below a fresh
        # tmpfs, the folders made again by mkdir -p can be entered anyway
        covered = []
        for path in needed:
            for parent in reversed(path.parents):
                if any(parent.is_relative_to(f) for f in fresh):
                    break
                if not can_enter(parent, self.uid, self.gid):
                    covered.append(str(parent))
                    break
        hidden = fresh + covered
        stash = next(p for p in ("/mnt", "/srv", "/media", "/opt") if Path(p).is_dir()
                     and not any(Path(n).is_relative_to(p) for n in needed))
        lines = ["set -e", f"mount -t tmpfs -o mode=0700 tmpfs {stash}"]
        for i, path in enumerate(needed):
            lines += [f"mkdir {stash}/{i}", f"mount --bind {q(str(path))} {stash}/{i}"]
        # secrets: /run is the container's own (a tmpfs here, so no folder is made on the host)
        lines.append("mount -t tmpfs -o mode=0755 tmpfs /run")
        etc_overlay = None
        for target, source in sorted(self.files.items()):
            parent = Path(target).parent
            if parent.is_relative_to("/etc") and not parent.exists() and etc_overlay is None:
                # a folder of /etc the host does not have: an overlay holds it, the host's /etc is not changed
                etc_overlay = self.run_dir / f"{self.name}.etc"
                (etc_overlay / "upper").mkdir(parents=True, exist_ok=True)
                (etc_overlay / "work").mkdir(parents=True, exist_ok=True)
                lines.append(f"mount -t overlay overlay -o lowerdir=/etc,upperdir={q(str(etc_overlay / 'upper'))},"
                             f"workdir={q(str(etc_overlay / 'work'))} /etc")
            # compose mounts secrets and ':ro' volumes read-only
            lines += [f"mkdir -p {q(str(parent))}", f"touch {q(target)}",
                      f"mount --bind {q(str(source))} {q(target)}", f"mount -o remount,bind,ro {q(target)}"]
        for target, source in sorted(self.dirs.items()):
            # a named volume: its folder is made under an overlay of the nearest existing parent (the host's
            # folders are not changed), and the volume's shared folder is bound there
            base = Path(target)
            while not base.exists():
                base = base.parent
            overlay = self.run_dir / f"{self.name}.{base.name or 'root'}.overlay"
            (overlay / "upper").mkdir(parents=True, exist_ok=True)
            (overlay / "work").mkdir(parents=True, exist_ok=True)
            if base != Path(target):
                lines.append(f"mount -t overlay overlay -o lowerdir={q(str(base))},upperdir={q(str(overlay / 'upper'))},"
                             f"workdir={q(str(overlay / 'work'))} {q(str(base))}")
            lines += [f"mkdir -p {q(target)}", f"mount --bind {q(str(source))} {q(target)}"]
        for mount in tmpfs:
            lines.append(f"mount -t tmpfs -o mode=1777 tmpfs {q(mount)}")
        for mount in covered:
            lines.append(f"mount -t tmpfs -o mode=0755 tmpfs {q(mount)}")
        for i, path in enumerate(needed):
            if any(path.is_relative_to(h) for h in hidden):
                lines += [f"mkdir -p {q(str(path))}", f"mount --bind {stash}/{i} {q(str(path))}"]
        if self.spec.get("read_only"):
            # the image's files are read-only in the container: so is the code here
            lines += [f"mount --bind {q(str(REPO))} {q(str(REPO))}", f"mount -o remount,bind,ro {q(str(REPO))}"]
        lines.append(f"umount -l {stash}")
        env = " ".join(q(f"{k}={v}") for k, v in sorted(self.env.items()))
        lines.append(f"cd {q(str(REPO))}")
        lines.append(f"exec /usr/bin/setpriv --reuid {self.uid} --regid {self.gid} --clear-groups "
                     f"/usr/bin/env -i {env} {' '.join(q(c) for c in self.command())}")
        return "\n".join(lines)

    def start(self) -> "Container":
        script = self.script()
        (self.run_dir / f"{self.name}.sh").write_text(script, encoding="utf-8")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def run(self, command: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
        """`command` instead of the service's, in the same namespace, mounts, user and environment."""
        self.command_override = command
        script = self.script()
        return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                              capture_output=True, text=True, timeout=timeout)

    def url(self, path: str = "") -> str:
        return f"http://{servers.HOST}:{self.port}{path}"

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if not self.alive():
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


def _needed_paths() -> list[Path]:
    """What the processes read from the host: the checkout, the virtualenv and the interpreter it links to."""
    paths = []
    for p in sorted({REPO, Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()}, key=lambda p: len(p.parts)):
        if not any(p.is_relative_to(q) for q in paths):
            paths.append(p)
    return paths


class Deployment:
    """Containers of the resolved compose file, with the session's servers in place of MongoDB and Kafka."""

    def __init__(self, compose: dict, run_dir: Path, secrets_dir: Path, mongo_uri: str, bootstrap: str, prefix: str):
        self.compose, self.run_dir, self.secrets_dir = compose, run_dir, secrets_dir
        self.uid, self.gid, self.image_env = image_user_and_env()
        self.mongo_uri, self.bootstrap, self.prefix = mongo_uri, bootstrap, prefix
        self.ports = {name: servers.free_port() for name in compose["services"] if name.endswith("-web")}
        self.containers: dict[str, Container] = {}
        self.alliance = self._alliance_file()

    def _alliance_file(self) -> Path:
        """Compose's alliance file with each `http://<service>:8000` pointed at the loopback port of that web."""
        web = self.compose["services"][f"{ECNU}-courses-web"]
        target = web["environment"]["ALLIANCE_CONFIG"]
        source = next(v.split(":")[0] for v in web["volumes"] if v.split(":")[1] == target)
        text = Path(source).read_text(encoding="utf-8")
        for name, port in self.ports.items():
            text = text.replace(f"http://{name}:8000", f"http://{servers.HOST}:{port}")
        path = self.run_dir / "alliance.json"
        path.write_text(text, encoding="utf-8")
        os.chmod(path, 0o444)
        return path

    def files_of(self, spec: dict) -> dict:
        files = {}
        for secret in spec.get("secrets", []):
            compose_path = Path(self.compose["secrets"][secret["source"]]["file"])
            # compose reads ./secrets/<name>; this test's `make secrets` wrote the same names here
            files[f"/run/secrets/{secret['target']}"] = self.secrets_dir / compose_path.name
        for volume in spec.get("volumes", []):
            source, target = volume.split(":")[:2]
            if target == spec["environment"].get("ALLIANCE_CONFIG"):
                files[target] = self.alliance
        return files

    def volumes_of(self, spec: dict) -> dict:
        """Container path -> host folder of the service's named volumes (the search index: web and worker share
        it), writable by the image's user as a fresh docker volume is."""
        dirs = {}
        for volume in spec.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source in (self.compose.get("volumes") or {}):
                folder = self.run_dir / "volumes" / source
                folder.mkdir(parents=True, exist_ok=True)
                os.chown(folder, self.uid, self.gid)
                dirs[target] = folder
        return dirs

    def container(self, name: str, register: bool = True, **env) -> Container:
        spec = self.compose["services"][name]
        overrides = {
            "MONGODB_URI": self.mongo_uri, "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "MONGODB_DATABASE_PREFIX": self.prefix, "KAFKA_TOPIC_PREFIX": self.prefix,
            # the embedded servers cannot authenticate (module doc): no SASL, no MongoDB user
            "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT", "MONGODB_PASSWORD_FILE": "", **env,
        }
        c = Container(name, spec, self.compose, uid=self.uid, gid=self.gid, image_env=self.image_env,
                      env=overrides, port=self.ports.get(name), files=self.files_of(spec), run_dir=self.run_dir,
                      dirs=self.volumes_of(spec))
        if register:
            self.containers[name] = c
        return c

    def stop(self):
        for c in self.containers.values():
            c.stop()


@pytest.fixture(scope="module")
def compose():
    _require_root_tools()
    return resolved_compose()


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("compose") / "secrets"
    make_secrets([ECNU, SDU], folder, say=lambda message: None)
    return folder


@pytest.fixture(scope="module")
def deployment(compose, secrets_dir, mongo_uri, kafka_bootstrap, tmp_path_factory):
    prefix = f"c{os.urandom(4).hex()}_"
    d = Deployment(compose, tmp_path_factory.mktemp("compose-run"), secrets_dir, mongo_uri, kafka_bootstrap, prefix)
    names = [f"{ECNU}-{s}-{kind}" for s in SERVICES for kind in ("web", "worker")]
    names += [f"{SDU}-catalog-web", f"{SDU}-catalog-worker"]
    started = time.monotonic()
    try:
        for name in names:
            d.container(name).start()
        for name in names:
            c = d.containers[name]
            if c.port:
                wait_until(lambda: not c.alive() or _status(c.url("/readyz")) == 200, WAIT, f"{name} ready")
                assert c.alive(), f"{name} exited:\n{c.output()[-3000:]}"
        d.started_in = time.monotonic() - started
        yield d
    finally:
        d.stop()


def _status(url: str) -> int | None:
    try:
        return requests.get(url, timeout=2).status_code
    except requests.RequestException:
        return None


def coordinator(secrets_dir: Path, school: str = ECNU) -> dict:
    token = issue_token(KeyRing(secrets_dir, school).private_key(), school, "coordinator")
    return {"Authorization": f"Bearer {token}"}


def test_make_secrets_gives_private_keys_to_the_image_user_only(secrets_dir):
    uid, gid, _ = image_user_and_env()
    assert stat.S_IMODE(secrets_dir.stat().st_mode) == 0o700
    for school in (ECNU, SDU):
        key = (secrets_dir / f"{school}.key").stat()
        assert (key.st_uid, key.st_gid, stat.S_IMODE(key.st_mode)) == (uid, gid, 0o400)
        assert stat.S_IMODE((secrets_dir / f"{school}.pub").stat().st_mode) == 0o444
        # the services' passwords: the image's user only, like the private keys
        for name in [f"{school}.kafka.password"] + [f"{school}.{s}.mongodb.password" for s in SERVICES]:
            st = (secrets_dir / name).stat()
            assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (uid, gid, 0o400), name


def test_every_secret_file_compose_mounts_is_one_that_make_secrets_writes(compose, secrets_dir):
    for name, secret in compose["secrets"].items():
        if ".tls." in secret["file"]:
            continue  # the school's certificate comes from its certificate authority, not make secrets
        assert (secrets_dir / Path(secret["file"]).name).is_file(), f"{name}: {secret['file']}"


_READ_SETTINGS = """
import json
from shared.config import Settings
from shared.kafka import connection_options
from shared.mongo import credentials
s = Settings.from_env()
k, m = connection_options(s), credentials(s)
print(json.dumps({"kafka": {key: k.get(key) for key in ("security_protocol", "sasl_mechanism", "sasl_plain_username")},
                  "kafka_password": len(k.get("sasl_plain_password") or ""),
                  "mongo": {key: m.get(key) for key in ("username", "authSource", "authMechanism")},
                  "mongo_password": len(m.get("password") or "")}))
"""


def test_every_process_reads_its_passwords_as_the_image_user_and_builds_its_credentials(deployment, secrets_dir):
    d = deployment
    for name in d.containers:
        spec = d.compose["services"][name]
        env = spec["environment"]
        # compose's own security settings this time, not the embedded servers' overrides
        c = d.container(name, register=False, KAFKA_SECURITY_PROTOCOL=env["KAFKA_SECURITY_PROTOCOL"],
                        MONGODB_PASSWORD_FILE=env["MONGODB_PASSWORD_FILE"], MONGODB_DATABASE_PREFIX="",
                        KAFKA_TOPIC_PREFIX="")
        result = c.run(["python", "-c", _READ_SETTINGS])
        assert result.returncode == 0, f"{name}:\n{result.stdout}\n{result.stderr[-3000:]}"
        got = json.loads(result.stdout.strip().splitlines()[-1])
        school, service = env["SCHOOL"], env["SERVICE"]
        database = f"{school}_{service}".replace("-", "_")
        assert got["kafka"] == {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
                                "sasl_plain_username": school}, name
        assert got["mongo"] == {"username": database, "authSource": database, "authMechanism": "SCRAM-SHA-256"}, name
        # the passwords are the files make secrets wrote for this school and this service
        assert got["kafka_password"] == len((secrets_dir / f"{school}.kafka.password").read_text()), name
        assert got["mongo_password"] == len(
            (secrets_dir / f"{school}.{service}.mongodb.password").read_text()), name


def test_no_password_is_given_in_an_environment_variable_only_as_a_file(compose):
    for name, spec in compose["services"].items():
        for key in (spec.get("environment") or {}):
            assert "PASSWORD" not in key or key.endswith("_FILE"), f"{name}: {key}"


def test_every_web_answers_health_and_metrics_as_the_image_user_with_a_fresh_tmp(deployment):
    for name, c in deployment.containers.items():
        if not c.port:
            continue
        for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
            response = requests.get(c.url(path), timeout=5)
            assert response.status_code == 200, f"{name} {path}: {response.status_code}\n{c.output()[-2000:]}"
        assert "http_requests_total" in requests.get(c.url("/metrics"), timeout=5).text
        # the image's user, not root
        assert os.stat(f"/proc/{c.proc.pid}").st_uid == deployment.uid


def test_a_course_written_at_one_school_is_published_signed_and_applied_by_both_catalogs(deployment, secrets_dir):
    d = deployment
    courses = d.containers[f"{ECNU}-courses-web"]
    code = f"CMP-{os.urandom(2).hex().upper()}"
    response = requests.post(courses.url("/courses"), json=course(code=code), headers=coordinator(secrets_dir),
                             timeout=10)
    assert response.status_code == 201, response.text
    created = response.json()
    topic = f"{d.prefix}{ECNU}.courses.v1"
    records = read_until(d.bootstrap, topic, lambda rs: any(r.key().decode() == created["id"] for r in rs), WAIT)
    mine = [r for r in records if r.key().decode() == created["id"]]
    assert mine, f"no event on {topic}:\n{d.containers[f'{ECNU}-courses-worker'].output()[-3000:]}"
    event = cloud_event(mine[0])
    assert event.get_type() == "course.published.v1"
    # both catalogs check the event's signature against the key make secrets wrote before applying it
    for school in (ECNU, SDU):
        catalog = d.containers[f"{school}-catalog-web"]
        wait_until(lambda: any(c["code"] == code for c in
                               requests.get(catalog.url("/courses"), params={"q": code}, timeout=5).json()["items"]),
                   WAIT, f"{code} in {school}'s catalog\n{d.containers[f'{school}-catalog-worker'].output()[-3000:]}")


def test_faculty_and_visits_writes_reach_the_partner_catalog(deployment, secrets_dir):
    d = deployment
    headers = coordinator(secrets_dir)
    faculty = requests.post(d.containers[f"{ECNU}-faculty-web"].url("/faculty"), json=profile(), headers=headers,
                            timeout=10)
    assert faculty.status_code == 201, faculty.text
    trip = requests.post(d.containers[f"{ECNU}-visits-web"].url("/visits"), json=visit(), headers=headers, timeout=10)
    assert trip.status_code == 201, trip.text
    sync = d.containers[f"{SDU}-catalog-web"].url("/sync")

    def applied(entity):
        for source in requests.get(sync, timeout=5).json()["sources"]:
            if source["school"] == ECNU and source["entity"] == entity:
                return source["applied_seq"] >= 1
        return False

    for entity in ("faculty", "visits"):
        wait_until(lambda: applied(entity), WAIT, f"{ECNU} {entity} applied by {SDU}'s catalog")


def test_the_workers_keep_running_without_key_or_permission_errors(deployment):
    for name, c in deployment.containers.items():
        assert c.alive(), f"{name} exited:\n{c.output()[-3000:]}"
        out = c.output()
        assert "PermissionError" not in out and "FileNotFoundError" not in out, f"{name}:\n{out[-3000:]}"
        assert "Traceback" not in out, f"{name}:\n{out[-3000:]}"


def test_a_worker_whose_key_openssl_wrote_for_root_stops_at_start_naming_the_file_and_the_fix(
        compose, tmp_path, mongo_uri, kafka_bootstrap):
    secrets = tmp_path / "secrets"
    make_secrets([ECNU, SDU], secrets, say=lambda message: None)
    # what `openssl genpkey -out ecnu-cto.key` run as root leaves: owner root, mode 0600
    key = secrets / f"{ECNU}.key"
    os.chown(key, 0, 0)
    os.chmod(key, 0o600)
    d = Deployment(compose, tmp_path, secrets, mongo_uri, kafka_bootstrap, f"k{os.urandom(4).hex()}_")
    worker = d.container(f"{ECNU}-courses-worker").start()
    try:
        worker.proc.wait(30)
    except subprocess.TimeoutExpired:
        worker.stop()
        raise AssertionError(f"the worker kept running:\n{worker.output()[-3000:]}")
    assert worker.proc.returncode != 0
    out = worker.output()
    assert "/run/secrets/ecnu-cto.key" in out and "make secrets" in out, out[-3000:]
    assert "mode 0600" in out, out[-3000:]
