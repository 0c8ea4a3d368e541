"""Reading keys and the metrics folder at start: a process that cannot stops with a message naming the fix."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared import metrics
from shared.auth import KeyRing, ensure_dev_keys, issue_token, verify_token
from shared.config import ConfigError

SCHOOLS = ("ecnu-cto", "sdu-sie")


def public_pem(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_a_missing_private_key_stops_a_signing_process_naming_the_file_and_make_secrets(tmp_path):
    ensure_dev_keys(tmp_path, SCHOOLS)
    (tmp_path / "ecnu-cto.key").unlink()
    with pytest.raises(ConfigError) as caught:
        KeyRing(tmp_path, "ecnu-cto").load(SCHOOLS, private=True)
    assert str(tmp_path / "ecnu-cto.key") in str(caught.value)
    assert "make secrets" in str(caught.value)


def test_a_key_file_that_cannot_be_read_stops_the_process_with_its_owner_and_mode(tmp_path):
    ensure_dev_keys(tmp_path, SCHOOLS)
    # root reads any file, so a folder in the key's place stands for an unreadable file here
    (tmp_path / "sdu-sie.pub").unlink()
    (tmp_path / "sdu-sie.pub").mkdir()
    with pytest.raises(ConfigError) as caught:
        KeyRing(tmp_path, "ecnu-cto").load(SCHOOLS, private=False)
    message = str(caught.value)
    assert f"cannot read key file {tmp_path / 'sdu-sie.pub'}" in message
    assert "mode " in message and "uid 10001" in message


def test_a_web_process_needs_no_private_key(tmp_path):
    ensure_dev_keys(tmp_path, SCHOOLS)
    (tmp_path / "ecnu-cto.key").unlink()
    ring = KeyRing(tmp_path, "ecnu-cto")
    ring.load(SCHOOLS, private=False)
    assert len(ring.public_keys("sdu-sie")) == 1


def test_a_private_key_that_is_not_pem_is_refused_at_load(tmp_path):
    ensure_dev_keys(tmp_path, SCHOOLS)
    (tmp_path / "ecnu-cto.key").write_text("not a key")
    with pytest.raises(ConfigError, match="not an unencrypted PEM private key"):
        KeyRing(tmp_path, "ecnu-cto").load(SCHOOLS, private=True)


def test_a_public_key_file_with_the_current_and_the_next_key_verifies_tokens_of_both(tmp_path):
    ensure_dev_keys(tmp_path, SCHOOLS)
    current = KeyRing(tmp_path, "ecnu-cto").private_key()
    following = Ed25519PrivateKey.generate()
    pub = tmp_path / "ecnu-cto.pub"
    pub.write_bytes(pub.read_bytes() + public_pem(following))
    verifier = KeyRing(tmp_path, "sdu-sie")
    verifier.load(SCHOOLS, private=False)
    assert len(verifier.public_keys("ecnu-cto")) == 2
    for key in (current, following):
        assert verify_token(issue_token(key, "ecnu-cto", "coordinator"), verifier, SCHOOLS).school == "ecnu-cto"


def test_the_metrics_folder_is_created_when_missing(tmp_path, monkeypatch):
    folder = tmp_path / "tmpfs" / "prometheus"
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    metrics.ensure_multiproc_dir()
    assert folder.is_dir()


def test_a_metrics_folder_that_cannot_be_created_stops_the_process_at_start(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "file" / "prometheus"))
    with pytest.raises(ConfigError, match="PROMETHEUS_MULTIPROC_DIR"):
        metrics.ensure_multiproc_dir()
