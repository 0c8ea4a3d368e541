"""Bearer tokens: JWTs signed per school with Ed25519, verified by every service.

Each school holds its own private key; every service holds every member's
public key (one file per school in KEYS_DIR: `<school>.pub`, and the school's
own `<school>.key`). A token's issuer is the school that signed it; its claims
carry one role (student, faculty, coordinator, partner), the school, and for
faculty the faculty id. The embedded stack generates dev keys on first start.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import current_app, g, request

from shared.config import ConfigError
from shared.errors import DomainError

log = logging.getLogger(__name__)

ROLES = ("student", "faculty", "coordinator", "partner")
AUDIENCE = "alliance-catalog"
ALGORITHM = "EdDSA"
# clock skew tolerated between schools' machines
LEEWAY_SECONDS = 30
# what a student's token may tell of them (the front door passes it from the sign-in): their school's
# courses service keeps it with their course-place requests; each an optional string
PROFILE_CLAIMS = ("name", "email", "student_number", "programme")
MAX_PROFILE_CLAIM = 320


def ensure_dev_keys(keys_dir: Path, schools) -> None:
    """Create an Ed25519 key pair for each school that has none (dev and test only)."""
    keys_dir = Path(keys_dir)
    keys_dir.mkdir(parents=True, exist_ok=True)
    for school in schools:
        private_path = keys_dir / f"{school}.key"
        if private_path.exists():
            continue
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        # write the public key first: a private key without its public half is the only broken state
        (keys_dir / f"{school}.pub").write_bytes(public)
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)


class KeyRing:
    """The public keys of every school, and this school's private key when present.

    `load()` reads, at start-up, every key a process needs, so that a key it cannot
    read stops the process with a ConfigError naming the file and the fix, instead of
    failing on every event or token later.
    """

    def __init__(self, keys_dir: Path, school: str):
        self.keys_dir = Path(keys_dir)
        self.school = school
        self._public: dict[str, object] = {}
        self._private = None
        # token -> (principal, expiry): clients reuse a token for many requests, and an
        # Ed25519 verification costs more than the rest of a typical request's checks
        self.verified: dict[str, tuple["Principal", float]] = {}

    def public_key_files(self, school: str) -> list[Path]:
        """`<school>.pub`, then any `<school>.<name>.pub`, those that exist."""
        paths = [self.keys_dir / f"{school}.pub"] + sorted(self.keys_dir.glob(f"{school}.*.pub"))
        return [p for p in paths if p.exists()]

    def public_keys(self, school: str) -> list:
        """Every public key the school may sign with: each PEM block of `<school>.pub` and `<school>.<name>.pub`.

        Several keys let a school rotate: partners add its next key first (a second
        block in `<school>.pub`, or a file beside it), then the school switches its
        private key, then the old public key is removed.
        """
        if school not in self._public:
            self._public[school] = self._read_public_keys(school, strict=False)
        return self._public[school]

    def _read_public_keys(self, school: str, strict: bool) -> list:
        """The keys of every public key file of `school`; an unreadable file raises if `strict`, else is skipped."""
        keys = []
        for path in self.public_key_files(school):
            try:
                keys.extend(read_public_keys(path))
            except ConfigError:
                if strict:
                    raise
        return keys

    def private_key(self):
        if self._private is None:
            self._private = read_private_key(self.keys_dir / f"{self.school}.key")
        return self._private

    def load(self, schools, private: bool) -> None:
        """Read now the keys this process needs: every school's public keys, and its own private key if `private`.

        A key file that exists but cannot be read or parsed raises ConfigError; a school
        without any public key file is only logged (its tokens and events are refused
        until its key is added), since a new partner's key may arrive after its
        configuration.
        """
        if private:
            self.private_key()
        for school in schools:
            if not self.public_key_files(school):
                log.warning("no public key of %s in %s: its tokens and events are refused", school, self.keys_dir)
            self._public[school] = self._read_public_keys(school, strict=True)


KEY_FIX = ("key files must be readable by the user the services run as (uid 10001 in the image): "
           "`make secrets` writes missing keys and fixes the owner and mode of existing ones "
           "(docs/operations.md, \"Secrets\")")


def _read_key_file(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"key file {path} does not exist; {KEY_FIX}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read key file {path} as uid {os.getuid()}: {exc.strerror}"
                          f"{_owner_and_mode(path)}; {KEY_FIX}") from None


def _owner_and_mode(path: Path) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return ""
    return f" (owner uid {st.st_uid}, gid {st.st_gid}, mode {st.st_mode & 0o7777:04o})"


def read_private_key(path: Path):
    """This school's Ed25519 private key (PEM, PKCS#8), or ConfigError naming the file and the fix."""
    raw = _read_key_file(path)
    try:
        return serialization.load_pem_private_key(raw, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"key file {path} is not an unencrypted PEM private key ({exc})") from None


def read_public_keys(path: Path) -> list:
    """Every PEM public key in the file (one, or several during a rotation), or ConfigError."""
    raw = _read_key_file(path)
    blocks = [b"-----BEGIN" + part for part in raw.split(b"-----BEGIN")[1:]]
    try:
        keys = [serialization.load_pem_public_key(block) for block in blocks]
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"key file {path} holds something that is not a PEM public key ({exc})") from None
    if not keys:
        raise ConfigError(f"key file {path} holds no PEM public key")
    return keys


@dataclass(frozen=True)
class Principal:
    """Who is calling: verified from the bearer token."""

    school: str
    role: str
    subject: str
    faculty_id: str | None = None
    # a student's name, email, student_number and programme, as their token tells them (PROFILE_CLAIMS)
    profile: dict = field(default_factory=dict, compare=False)


def issue_token(private_key, school: str, role: str, subject: str | None = None,
                faculty_id: str | None = None, ttl_seconds: int = 3600, now: float | None = None,
                profile: dict | None = None) -> str:
    """Sign a token for a member of `school` (or for its service, role partner).

    `profile`: for a student, the PROFILE_CLAIMS given (strings) become claims of the token.
    """
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    if role == "faculty" and not faculty_id:
        raise ValueError("a faculty token needs a faculty id")
    issued = int(now if now is not None else time.time())
    claims = {
        "iss": school,
        "aud": AUDIENCE,
        "sub": subject or f"{role}@{school}",
        "school": school,
        "role": role,
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl_seconds,
        "jti": str(uuid.uuid4()),
    }
    if faculty_id:
        claims["faculty_id"] = faculty_id
    if role == "student":
        claims.update({k: v for k, v in (profile or {}).items() if k in PROFILE_CLAIMS and isinstance(v, str) and v})
    return jwt.encode(claims, private_key, algorithm=ALGORITHM)


VERIFIED_CACHE_SIZE = 4096


def verify_token(token: str, keyring: KeyRing, known_schools) -> Principal:
    """Check signature, issuer, audience and validity; raise 401 on anything wrong.

    A token verified before is accepted again from the key ring's cache until it expires.
    """
    cached = keyring.verified.get(token)
    if cached is not None and time.time() < cached[1]:
        return cached[0]
    principal, expires = _verify(token, keyring, known_schools)
    if len(keyring.verified) >= VERIFIED_CACHE_SIZE:
        keyring.verified.clear()
    keyring.verified[token] = (principal, expires)
    return principal


def _verify(token: str, keyring: KeyRing, known_schools) -> tuple[Principal, float]:
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise _unauthenticated("the bearer token is not a JWT") from None
    issuer = unverified.get("iss")
    if header.get("alg") != ALGORITHM:
        raise _unauthenticated(f"tokens must be signed with {ALGORITHM}")
    if not isinstance(issuer, str) or issuer not in known_schools:
        raise _unauthenticated("the token's issuer is not a school of the alliance")
    keys = keyring.public_keys(issuer)
    if not keys:
        raise _unauthenticated("no public key is configured for the token's issuer")
    try:
        claims = _decode_with_any(token, keys, issuer)
    except jwt.ExpiredSignatureError:
        raise _unauthenticated("the token has expired") from None
    except jwt.ImmatureSignatureError:
        raise _unauthenticated("the token is not valid yet") from None
    except jwt.PyJWTError:
        raise _unauthenticated("the token's signature or claims are invalid") from None
    role = claims.get("role")
    if role not in ROLES or claims.get("school") != issuer:
        raise _unauthenticated("the token's role or school claim is invalid")
    faculty_id = claims.get("faculty_id")
    if role == "faculty" and not isinstance(faculty_id, str):
        raise _unauthenticated("a faculty token needs a faculty_id claim")
    profile = {k: claims[k][:MAX_PROFILE_CLAIM] for k in PROFILE_CLAIMS
               if role == "student" and isinstance(claims.get(k), str) and claims[k].strip()}
    principal = Principal(school=issuer, role=role, subject=str(claims["sub"]), faculty_id=faculty_id,
                          profile=profile)
    return principal, float(claims["exp"])


def _decode_with_any(token: str, keys: list, issuer: str) -> dict:
    """Decode with the first of the issuer's keys whose signature verifies."""
    for key in keys[:-1]:
        try:
            return _decode(token, key, issuer)
        except jwt.InvalidSignatureError:
            continue
    return _decode(token, keys[-1], issuer)


def _decode(token: str, key, issuer: str) -> dict:
    return jwt.decode(
        token, key, algorithms=[ALGORITHM], audience=AUDIENCE, issuer=issuer, leeway=LEEWAY_SECONDS,
        options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub"]},
    )


def _unauthenticated(detail: str) -> DomainError:
    problem = DomainError("unauthenticated", detail)
    problem.headers["WWW-Authenticate"] = 'Bearer realm="alliance-catalog"'
    return problem


def current_principal(optional: bool = False) -> Principal | None:
    """The caller of this request, verified once and cached on `g`."""
    if "principal" in g:
        return g.principal
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        if optional:
            return None
        raise _unauthenticated("this request needs an Authorization: Bearer header")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthenticated("the Authorization header must be 'Bearer <token>'")
    settings = current_app.extensions["settings"]
    principal = verify_token(token.strip(), current_app.extensions["keyring"], settings.school_ids)
    g.principal = principal
    return principal


def require(*roles: str, partner_schools: bool = False):
    """Allow a view to callers of this school with one of `roles`.

    With partner_schools=True, a `partner` token of another alliance school is
    allowed too (the change feed and digest); every other role must belong to
    this school, so a school can never act on another school's records.
    """

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            principal = current_principal()
            own = current_app.extensions["settings"].school
            if principal.role not in roles:
                raise DomainError("forbidden",
                                  f"role {principal.role!r} may not call this; allowed: {', '.join(roles)}")
            if principal.school != own and not (partner_schools and principal.role == "partner"):
                raise DomainError("forbidden", f"a token of {principal.school!r} cannot act on {own!r}")
            return view(*args, **kwargs)

        wrapper.required_roles = roles
        wrapper.partner_schools = partner_schools
        return wrapper

    return decorator
