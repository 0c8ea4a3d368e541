"""Production authentication, as pure logic: Kafka ACLs, the clients' SASL and MongoDB credentials, passwords.

The embedded servers cannot check credentials (tests/integration/test_kafka_sasl.py says what they can),
so what the production servers will be given is checked here, exactly.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from ops import mongo_users, secrets as make_secrets_module
from kafka.admin import ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourcePattern, ResourceType

from ops.topics import Rule, acl_changes, is_dead_letter_topic, of_acl, school_acls, to_acl, topic_settings
from services.catalog import worker as catalog_worker
from shared.config import SERVICE_PORT_OFFSETS, ConfigError, School, Settings
from shared.kafka import connection_options
from shared.mongo import credentials

REPO = Path(__file__).resolve().parents[2]
SCHOOLS = ["ecnu-cto", "sdu-sie"]
ALLIANCE = tuple(School(id=s, name={}, urls={}) for s in SCHOOLS)
# Kafka's authorizer: Read, Write, Delete and Alter on a resource imply Describe on it
IMPLIES_DESCRIBE = {"Read", "Write", "Delete", "Alter"}


def permits(rules: list[Rule], principal: str, operation: str, resource: str, name: str) -> bool:
    """Whether the broker allows it under these ALLOW rules (nothing is allowed without a rule)."""
    for r in rules:
        if r.principal != principal or r.resource != resource:
            continue
        if r.operation != operation and not (operation == "Describe" and r.operation in IMPLIES_DESCRIBE):
            continue
        if (r.pattern == "literal" and r.name == name) or (r.pattern == "prefixed" and name.startswith(r.name)):
            return True
    return False


@pytest.mark.parametrize("prefix", ["", "t0_"])
def test_no_school_may_write_create_or_read_the_dead_letters_of_another_school_s_topics(prefix):
    rules = school_acls(SCHOOLS, prefix)
    for school in SCHOOLS:
        for other in SCHOOLS:
            for topic in topic_settings([other], 1):
                name = prefix + topic
                own = other == school
                for operation in ("Write", "Create"):
                    assert permits(rules, f"User:{school}", operation, "topic", name) == own, (school, operation, name)
                # the partners' event topics are read; their dead letters are not even visible
                readable = own or not is_dead_letter_topic(topic)
                assert permits(rules, f"User:{school}", "Read", "topic", name) == readable, (school, name)
                assert permits(rules, f"User:{school}", "Describe", "topic", name) == readable, (school, name)
                assert not permits(rules, f"User:{school}", "Delete", "topic", name)
                assert not permits(rules, f"User:{school}", "Alter", "topic", name)


def test_a_school_uses_only_its_own_consumer_groups():
    rules = school_acls(SCHOOLS)
    for school in SCHOOLS:
        for other in SCHOOLS:
            group = f"{other}.catalog"
            assert permits(rules, f"User:{school}", "Read", "group", group) == (school == other)


def test_a_principal_that_no_rule_names_may_do_nothing():
    rules = school_acls(SCHOOLS)
    assert not any(permits(rules, "User:other-school", op, "topic", "ecnu-cto.courses.v1")
                   for op in ("Read", "Write", "Describe", "Create"))
    # a school id that starts like another's does not share its prefix: the dot ends it
    assert not permits(school_acls(["ecnu", "ecnu-cto"]), "User:ecnu", "Write", "topic", "ecnu-cto.courses.v1")


def _settings(school: str, service: str, prefix: str = "") -> Settings:
    return Settings(school=school, service=service, schools=ALLIANCE, kafka_topic_prefix=prefix)


@pytest.mark.parametrize("prefix", ["", "t0_"])
def test_every_topic_and_group_the_services_use_is_allowed_to_their_school(prefix):
    """What the code publishes, reads and joins, taken from the code: the ACLs must allow all of it."""
    from services.visits import worker as visits_worker

    rules = school_acls(SCHOOLS, prefix)
    for school in SCHOOLS:
        principal = f"User:{school}"
        # the relays publish their own entity and stream topics; every consumer dead-letters to its own DLQ
        for entity in ("courses", "faculty", "visits", visits_worker.REQUEST_TOPIC, visits_worker.DECISION_TOPIC):
            assert permits(rules, principal, "Write", "topic", _settings(school, "courses", prefix).topic(entity))
        for service in SERVICE_PORT_OFFSETS:
            settings = _settings(school, service, prefix)
            assert permits(rules, principal, "Write", "topic", settings.dlq_topic)
            assert permits(rules, principal, "Create", "topic", settings.dlq_topic)
        # the catalog reads every school's entity topics in its own group
        catalog = _settings(school, "catalog", prefix)
        for topic in catalog_worker.topics(catalog):
            assert permits(rules, principal, "Read", "topic", topic), topic
        assert permits(rules, principal, "Read", "group", catalog_worker.group_id(catalog))
        # the visits worker reads every school's slot requests and decisions, in its own groups
        visits = _settings(school, "visits", prefix)
        for s in SCHOOLS:
            for stream in (visits_worker.REQUEST_TOPIC, visits_worker.DECISION_TOPIC):
                assert permits(rules, principal, "Read", "topic", visits.topic(stream, s))
        for group in ("visits.requests", "visits.decisions"):
            assert permits(rules, principal, "Read", "group", f"{prefix}{school}.{group}")


def test_the_acl_table_in_docs_access_md_is_the_one_kafka_init_applies():
    text = (REPO / "docs" / "access.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- kafka-acls:start -->(.*?)<!-- kafka-acls:end -->", text, re.S)
    assert block, "docs/access.md has no kafka-acls table"
    rows = set()
    for line in block.group(1).splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("User:"):
            rows.add(Rule(cells[0], cells[1], cells[2], cells[3], cells[4]))
    assert rows == set(school_acls(["ecnu-cto", "sdu-sie"]))


def test_a_rule_becomes_a_kafka_acl_and_back_unchanged():
    for rule in school_acls(SCHOOLS):
        assert of_acl(to_acl(rule)) == rule


def test_kafka_init_adds_what_is_missing_deletes_what_is_no_longer_derived_and_keeps_hand_made_denials():
    wanted = school_acls(SCHOOLS)
    stale = Rule("User:ecnu-cto", "topic", "prefixed", "sdu-sie.", "Write")
    denial = ACL("User:ecnu-cto", "*", ACLOperation.READ, ACLPermissionType.DENY,
                 ResourcePattern(ResourceType.TOPIC, "sdu-sie.visits.v1", ACLResourcePatternType.LITERAL))
    held = [to_acl(r) for r in wanted[1:]] + [to_acl(stale), denial]
    missing, extra = acl_changes(wanted, held)
    assert missing == [wanted[0]]
    assert [of_acl(a) for a in extra] == [stale]
    # a second run finds nothing to do
    assert acl_changes(wanted, [to_acl(r) for r in wanted] + [denial]) == ([], [])


def test_sasl_settings_give_kafka_python_exactly_the_scram_arguments():
    settings = Settings(school="ecnu-cto", service="courses", schools=ALLIANCE, kafka_bootstrap="kafka:9092",
                        kafka_security_protocol="SASL_PLAINTEXT", kafka_password="s3cret")
    options = connection_options(settings)
    assert {k: options[k] for k in ("bootstrap_servers", "security_protocol", "sasl_mechanism",
                                     "sasl_plain_username", "sasl_plain_password")} == {
        "bootstrap_servers": "kafka:9092", "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "ecnu-cto", "sasl_plain_password": "s3cret"}
    plain = connection_options(Settings(school="ecnu-cto", schools=ALLIANCE))
    assert plain["security_protocol"] == "PLAINTEXT" and "sasl_mechanism" not in plain
    assert "s3cret" not in repr(settings)


def test_the_service_reads_its_passwords_from_files_at_start(tmp_path, monkeypatch):
    kafka, mongo = tmp_path / "kafka.password", tmp_path / "mongodb.password"
    kafka.write_text("k-pass")
    mongo.write_text("m-pass")
    for name, value in {"SCHOOL": "sdu-sie", "SERVICE": "catalog", "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                        "KAFKA_PASSWORD_FILE": str(kafka), "MONGODB_PASSWORD_FILE": str(mongo),
                        "ALLIANCE_CONFIG": str(REPO / "config" / "alliance.compose.json")}.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    assert connection_options(settings)["sasl_plain_password"] == "k-pass"
    assert connection_options(settings)["sasl_plain_username"] == "sdu-sie"
    assert credentials(settings) == {"username": "sdu_sie_catalog", "password": "m-pass",
                                     "authSource": "sdu_sie_catalog", "authMechanism": "SCRAM-SHA-256"}


def test_an_unreadable_or_missing_password_stops_the_start_naming_the_file_and_make_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("ALLIANCE_CONFIG", str(REPO / "config" / "alliance.compose.json"))
    monkeypatch.setenv("MONGODB_PASSWORD_FILE", str(tmp_path / "absent.password"))
    with pytest.raises(ConfigError) as err:
        Settings.from_env()
    assert "absent.password" in str(err.value) and "make secrets" in str(err.value)
    monkeypatch.delenv("MONGODB_PASSWORD_FILE")
    # SASL with no password at all, and a protocol the clients do not know
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    with pytest.raises(ConfigError, match="KAFKA_PASSWORD_FILE"):
        Settings.from_env()
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SSL_PLAINTEXT")
    with pytest.raises(ConfigError, match="KAFKA_SECURITY_PROTOCOL"):
        Settings.from_env()


def test_without_a_password_the_mongodb_client_gets_no_credentials():
    assert credentials(Settings(schools=ALLIANCE)) == {}


def test_each_service_user_may_read_and_write_its_own_database_and_nothing_else():
    for school in SCHOOLS:
        names = set()
        for service in mongo_users.SERVICES:
            database = mongo_users.database_of(school, service)
            assert database == _settings(school, service).database_name
            for exists in (False, True):
                command = mongo_users.user_command(database, "pw", exists)
                assert next(iter(command)) == ("updateUser" if exists else "createUser")
                assert command[next(iter(command))] == database
                assert command["roles"] == [{"role": "readWrite", "db": database}]
            names.add(database)
        assert len(names) == len(mongo_users.SERVICES)
    # the users are the ones the services log in as
    assert credentials(Settings(school="ecnu-cto", service="catalog", schools=ALLIANCE, mongodb_password="x"))[
        "username"] == mongo_users.database_of("ecnu-cto", "catalog")


def test_make_secrets_writes_every_password_once_with_the_owner_and_mode_its_reader_needs(tmp_path):
    folder = tmp_path / "secrets"
    uid, gid = os.getuid(), os.getgid()
    make_secrets_module.make_secrets(SCHOOLS, folder, uid=uid, gid=gid, say=lambda m: None)
    files = make_secrets_module.password_files(SCHOOLS)
    assert set(files) == {p.name for p in folder.glob("*.password")}
    values = {}
    for name, private in files.items():
        st = (folder / name).stat()
        assert stat.S_IMODE(st.st_mode) == (0o400 if private else 0o444), name
        values[name] = (folder / name).read_text()
        assert len(values[name]) >= 40 and "\n" not in values[name]
    assert len(set(values.values())) == len(values)
    # the servers' own users read theirs; everything a service reads is private to the image's user
    assert not files["kafka-admin.password"] and not files["ecnu-cto.mongodb-root.password"]
    assert files["ecnu-cto.kafka.password"] and files["ecnu-cto.catalog.mongodb.password"]
    # never replaced: a second run keeps every password
    make_secrets_module.make_secrets(SCHOOLS, folder, uid=uid, gid=gid, say=lambda m: None)
    assert {name: (folder / name).read_text() for name in files} == values


def test_make_secrets_knows_every_service():
    # ops/secrets.py runs without the project's packages, so it lists the services itself
    assert set(make_secrets_module.SERVICES) == set(SERVICE_PORT_OFFSETS)
