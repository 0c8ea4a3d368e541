"""`make secrets`: each school's missing key pair and passwords in ./secrets/, with the owners and modes compose needs.

Run as root on the Docker host, from the checkout: `sudo make secrets` (or
`python3 ops/secrets.py`). Only the Python standard library and `openssl` are
needed, not the project's virtualenv.

Compose (outside swarm) bind-mounts a file secret with the host file's owner and
mode, and the services run as uid 10001 in the image, so:

- `<school>.key` (a private key) is owned by uid/gid 10001 with mode 0400: the
  services can read it, no other user of the container can;
- `<school>.pub` (a public key) has mode 0444;
- the folder itself has mode 0700, so no account of the host but its owner
  (and root) reaches the files, whatever uid 10001 is on the host.

The passwords (random, 256 bits, one line without a newline, in files compose
mounts as secrets; never in the compose file or an environment variable):

- `<school>.<service>.mongodb.password`: the service's MongoDB user
  (ops/mongo_users.py), and `<school>.kafka.password`: the school's Kafka
  principal `User:<school>` (ops/topics.py); owned by 10001 with mode 0400,
  like the private keys, as only the services and the init steps (same uid)
  read them;
- `<school>.mongodb-root.password` (the school's MongoDB root user) and
  `kafka-admin.password` (the broker's super user, for kafka-init): mode
  0444, because the servers read them as their own users (mongod as 999, the
  Kafka broker as 1000); each is mounted only into its server and init step,
  and the 0700 folder keeps the host's other accounts out.

Existing files are never replaced; their owner and mode are corrected. A
`<school>.pub` without its `.key` is a partner's public key: left as it is.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# the image's user (Dockerfile: useradd --uid 10001)
APP_UID = 10001
APP_GID = 10001
# every service of a school has its own MongoDB user (shared/config.py SERVICE_PORT_OFFSETS lists them)
SERVICES = ("catalog", "courses", "faculty", "visits")
KAFKA_ADMIN_PASSWORD = "kafka-admin.password"


def schools_of(config: Path) -> list[str]:
    raw = json.loads(config.read_text(encoding="utf-8"))
    return [entry["id"] for entry in raw["schools"]]


def openssl(*args: str, stdin: bytes | None = None) -> bytes:
    result = subprocess.run(["openssl", *args], input=stdin, capture_output=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"openssl {' '.join(args)} failed: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout


def public_of(private_path: Path) -> bytes:
    # read the private key through stdin: openssl never gets it as a path it could log
    return openssl("pkey", "-pubout", stdin=private_path.read_bytes())


def write_new(path: Path, data: bytes, mode: int, uid: int | None, gid: int | None) -> None:
    """Write `data` to a new file with this owner and mode before it has its name (never replaces one)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if uid is not None:
            os.chown(tmp, uid, gid)
        os.chmod(tmp, mode)
        # link, not rename: fails rather than replace a file that appeared meanwhile
        os.link(tmp, path)
    finally:
        os.unlink(tmp)


def fix(path: Path, mode: int, uid: int | None, gid: int | None, say) -> None:
    st = path.stat()
    if uid is not None and (st.st_uid, st.st_gid) != (uid, gid):
        os.chown(path, uid, gid)
        say(f"{path}: owner set to {uid}:{gid}")
    if st.st_mode & 0o7777 != mode:
        os.chmod(path, mode)
        say(f"{path}: mode set to {mode:04o}")


def password_files(schools: list[str]) -> dict[str, bool]:
    """Every password file `make secrets` writes -> whether only the services' uid may read it."""
    files = {KAFKA_ADMIN_PASSWORD: False}
    for school in schools:
        files[f"{school}.kafka.password"] = True
        files[f"{school}.mongodb-root.password"] = False
        for service in SERVICES:
            files[f"{school}.{service}.mongodb.password"] = True
    return files


def make_passwords(schools: list[str], folder: Path, uid: int = APP_UID, gid: int = APP_GID, say=print) -> None:
    """Each missing password file in `folder`; owners and modes as the module docstring says."""
    for name, private in password_files(schools).items():
        path = folder / name
        mode, owner = (0o400, uid) if private else (0o444, None)
        if path.exists():
            fix(path, mode, owner, gid if private else None, say)
            continue
        write_new(path, secrets.token_urlsafe(32).encode("ascii"), mode, owner, gid if private else None)
        say(f"{path}: new password (mode {mode:04o}{f', owner {uid}:{gid}' if private else ''})")


def make_secrets(schools: list[str], folder: Path, uid: int = APP_UID, gid: int = APP_GID, say=print) -> None:
    """Each school's missing key pair and passwords in `folder`; owners and modes as the module docstring says."""
    folder.mkdir(mode=0o700, exist_ok=True)
    os.chmod(folder, 0o700)
    make_passwords(schools, folder, uid, gid, say)
    for school in schools:
        key, pub = folder / f"{school}.key", folder / f"{school}.pub"
        if not key.exists() and pub.exists():
            fix(pub, 0o444, None, None, say)
            say(f"{pub}: a public key without its private key (a partner's); left as it is")
            continue
        if not key.exists():
            pem = openssl("genpkey", "-algorithm", "ed25519")
            public = openssl("pkey", "-pubout", stdin=pem)
            # the public half first: a private key without its public half is the only broken state
            if not pub.exists():
                write_new(pub, public, 0o444, None, None)
            write_new(key, pem, 0o400, uid, gid)
            say(f"{key}: new Ed25519 private key (owner {uid}:{gid}, mode 0400)")
            say(f"{pub}: its public key (mode 0444); give it to every partner school")
            continue
        fix(key, 0o400, uid, gid, say)
        if not pub.exists():
            write_new(pub, public_of(key), 0o444, None, None)
            say(f"{pub}: public key derived from {key.name}")
        else:
            fix(pub, 0o444, None, None, say)
            # during a rotation <school>.pub holds the current and the next key: it must hold this one
            if public_of(key).strip() not in pub.read_bytes():
                say(f"WARNING {pub} does not contain the public key of {key.name}: tokens and events "
                    "signed with this key will be refused")
        say(f"{key}, {pub}: present")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "config" / "alliance.compose.json",
                        help="the alliance configuration whose schools get a key pair")
    parser.add_argument("--dir", type=Path, default=REPO / "secrets", help="where compose reads its secrets")
    parser.add_argument("--school", action="append", help="only this school (repeatable)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("make secrets must run as root (sudo make secrets): the private keys are given to uid "
              f"{APP_UID}, the services' user in the image", file=sys.stderr)
        return 2
    schools = args.school or schools_of(args.config)
    make_secrets(schools, args.dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
