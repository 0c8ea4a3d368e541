"""Token verification: real Ed25519 keys and PyJWT, no servers."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.auth import KeyRing, ensure_dev_keys, issue_token, verify_token
from shared.errors import DomainError

SCHOOLS = ("ecnu-cto", "sdu-sie")


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys")
    ensure_dev_keys(path, SCHOOLS)
    return path


def ring(keys, school="ecnu-cto"):
    return KeyRing(keys, school)


def refused(token, keys, detail_part):
    with pytest.raises(DomainError) as caught:
        verify_token(token, ring(keys), SCHOOLS)
    assert caught.value.status == 401
    assert detail_part in caught.value.detail
    return caught.value


def test_a_token_signed_by_its_school_is_accepted_with_its_role(keys):
    token = issue_token(ring(keys).private_key(), "ecnu-cto", "faculty", faculty_id="f-1")
    principal = verify_token(token, ring(keys), SCHOOLS)
    assert (principal.school, principal.role, principal.faculty_id) == ("ecnu-cto", "faculty", "f-1")


def test_a_partner_token_of_another_school_verifies_with_that_school_key(keys):
    token = issue_token(ring(keys, "sdu-sie").private_key(), "sdu-sie", "partner")
    assert verify_token(token, ring(keys), SCHOOLS).school == "sdu-sie"


def test_an_expired_token_is_refused(keys):
    token = issue_token(ring(keys).private_key(), "ecnu-cto", "student", ttl_seconds=60, now=time.time() - 3600)
    refused(token, keys, "expired")


def test_a_token_not_valid_yet_is_refused(keys):
    token = issue_token(ring(keys).private_key(), "ecnu-cto", "student", now=time.time() + 3600)
    refused(token, keys, "not valid yet")


def test_a_token_signed_with_another_key_is_refused(keys):
    token = issue_token(Ed25519PrivateKey.generate(), "ecnu-cto", "coordinator")
    refused(token, keys, "signature")


def test_a_school_cannot_sign_for_another_school(keys):
    # sdu-sie's key, claiming to be ecnu-cto
    token = issue_token(ring(keys, "sdu-sie").private_key(), "ecnu-cto", "coordinator")
    refused(token, keys, "signature")


def test_alg_none_is_refused(keys):
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=")
    claims = {"iss": "ecnu-cto", "aud": "alliance-catalog", "sub": "x", "school": "ecnu-cto",
              "role": "coordinator", "iat": int(time.time()), "nbf": int(time.time()), "exp": int(time.time()) + 60}
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    refused((header + b"." + body + b".").decode(), keys, "EdDSA")


def test_an_hmac_token_using_the_public_key_as_secret_is_refused(keys):
    public_pem = (keys / "ecnu-cto.pub").read_bytes()
    claims = {"iss": "ecnu-cto", "aud": "alliance-catalog", "sub": "x", "school": "ecnu-cto",
              "role": "coordinator", "iat": int(time.time()), "nbf": int(time.time()), "exp": int(time.time()) + 60}
    token = jwt.encode(claims, public_pem.decode()[:40], algorithm="HS256")
    refused(token, keys, "EdDSA")


def test_an_unknown_issuer_is_refused(keys):
    token = issue_token(Ed25519PrivateKey.generate(), "elsewhere", "coordinator")
    refused(token, keys, "issuer")


def test_a_role_outside_the_four_is_refused(keys):
    now = int(time.time())
    claims = {"iss": "ecnu-cto", "aud": "alliance-catalog", "sub": "x", "school": "ecnu-cto", "role": "admin",
              "iat": now, "nbf": now, "exp": now + 60}
    refused(jwt.encode(claims, ring(keys).private_key(), algorithm="EdDSA"), keys, "role")


def test_a_token_for_another_audience_is_refused(keys):
    now = int(time.time())
    claims = {"iss": "ecnu-cto", "aud": "someone-else", "sub": "x", "school": "ecnu-cto", "role": "student",
              "iat": now, "nbf": now, "exp": now + 60}
    refused(jwt.encode(claims, ring(keys).private_key(), algorithm="EdDSA"), keys, "claims")


def test_garbage_is_refused(keys):
    refused("not.a.token", keys, "not a JWT")


def test_dev_keys_are_created_once_and_kept(tmp_path):
    ensure_dev_keys(tmp_path, ["ecnu-cto"])
    first = (tmp_path / "ecnu-cto.key").read_bytes()
    ensure_dev_keys(tmp_path, ["ecnu-cto"])
    assert (tmp_path / "ecnu-cto.key").read_bytes() == first
    assert (tmp_path / "ecnu-cto.key").stat().st_mode & 0o077 == 0


def test_a_cached_token_is_refused_once_it_expires(keys):
    keyring = ring(keys)
    fresh = issue_token(keyring.private_key(), "ecnu-cto", "student", ttl_seconds=60)
    principal = verify_token(fresh, keyring, SCHOOLS)
    assert keyring.verified[fresh][0] == principal
    # a token that was verified while valid and has expired since
    expired = issue_token(keyring.private_key(), "ecnu-cto", "student", ttl_seconds=60, now=time.time() - 3600)
    keyring.verified[expired] = (principal, time.time() - 3540)
    refused(expired, keys, "expired")
    with pytest.raises(DomainError):
        verify_token(expired, keyring, SCHOOLS)


def test_a_school_rotating_keys_is_accepted_with_both_during_the_switch(tmp_path):
    ensure_dev_keys(tmp_path, SCHOOLS)
    old_ring = KeyRing(tmp_path, "ecnu-cto")
    old_token = issue_token(old_ring.private_key(), "ecnu-cto", "coordinator")
    # the next key is published to every service first, beside the current one
    from cryptography.hazmat.primitives import serialization

    next_key = Ed25519PrivateKey.generate()
    (tmp_path / "ecnu-cto.next.pub").write_bytes(next_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    verifier = KeyRing(tmp_path, "sdu-sie")
    new_token = issue_token(next_key, "ecnu-cto", "coordinator")
    assert verify_token(old_token, verifier, SCHOOLS).school == "ecnu-cto"
    assert verify_token(new_token, verifier, SCHOOLS).school == "ecnu-cto"
    stranger = issue_token(Ed25519PrivateKey.generate(), "ecnu-cto", "coordinator")
    with pytest.raises(DomainError):
        verify_token(stranger, verifier, SCHOOLS)


def test_a_students_token_carries_the_profile_claims_given_and_other_roles_none(keys):
    profile = {"name": "Wang Fang", "email": "wang.fang@sdu.example", "student_number": "202400123",
               "programme": "MEM", "faculty_id": "not-a-profile-claim", "role": "coordinator"}
    token = issue_token(ring(keys).private_key(), "ecnu-cto", "student", subject="s-1", profile=profile)
    principal = verify_token(token, ring(keys), SCHOOLS)
    assert principal.role == "student" and principal.faculty_id is None
    assert principal.profile == {k: profile[k] for k in ("name", "email", "student_number", "programme")}
    partial = issue_token(ring(keys).private_key(), "ecnu-cto", "student", profile={"name": "Li Lei"})
    assert verify_token(partial, ring(keys), SCHOOLS).profile == {"name": "Li Lei"}
    coordinator = issue_token(ring(keys).private_key(), "ecnu-cto", "coordinator", profile=profile)
    assert "email" not in jwt.decode(coordinator, options={"verify_signature": False})
    assert verify_token(coordinator, ring(keys), SCHOOLS).profile == {}
