"""Every school's topics, principals and ACLs: `python -m ops.topics` (compose's `kafka-init`, one process).

Creates the topics that are missing, and brings existing ones up to date: their
configuration (cleanup policy, retention, min.insync.replicas) is set with an
incremental alter (keys not named here keep their values), and a topic with
fewer partitions than TOPIC_PARTITIONS gets more (never fewer: Kafka cannot
remove partitions). A replication factor below TOPIC_REPLICATION is only
reported: raising it is a partition reassignment (docs/operations.md, "Grow to
three brokers").

With KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT (compose) it connects as the
broker's super user (KAFKA_USERNAME, password in KAFKA_PASSWORD_FILE), sets each
school's SCRAM credential (principal `User:<school>`, password in
`$SECRETS_DIR/<school>.kafka.password`) and makes the ACLs what `school_acls`
derives from the schools and docs/access.md's rules, no more: ACLs of a
school's principal that are not derived are deleted. Every step can run again.

Environment: KAFKA_BOOTSTRAP_SERVERS, SCHOOLS (space-separated ids),
TOPIC_PARTITIONS, TOPIC_REPLICATION, MIN_INSYNC_REPLICAS, and for SASL
KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_MECHANISM, KAFKA_USERNAME,
KAFKA_PASSWORD_FILE, SECRETS_DIR (default /run/secrets).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType, ConfigResource,
                         ConfigResourceType, NewPartitions, NewTopic, ResourcePattern, ResourcePatternFilter,
                         ResourceType, ScramMechanism, UserScramCredentialUpsertion)
from kafka.errors import TopicAlreadyExistsError

from shared.config import ConfigError, read_secret
from shared.kafka import security_options

log = logging.getLogger("topics")

DAY_MS = 24 * 3600 * 1000
SCRAM_ITERATIONS = 8192


def topic_settings(schools: list[str], min_insync: int) -> dict[str, dict[str, str]]:
    """Topic name -> its configuration, for every school."""
    topics = {}
    for school in schools:
        # entity topics: compacted, the latest event of each entity is its full public state
        for entity in ("courses", "faculty", "visits"):
            topics[f"{school}.{entity}.v1"] = {"cleanup.policy": "compact", "min.compaction.lag.ms": "3600000"}
        # the request sagas' requests and decisions (slots, course places): streams of commands and outcomes,
        # kept 30 days
        for stream in ("slot-requests", "slot-decisions", "place-requests", "place-decisions"):
            topics[f"{school}.{stream}.v1"] = {"cleanup.policy": "delete", "retention.ms": str(30 * DAY_MS)}
        # refused events with the reason, kept 90 days for inspection
        topics[f"{school}.dlq"] = {"cleanup.policy": "delete", "retention.ms": str(90 * DAY_MS)}
    for config in topics.values():
        config["min.insync.replicas"] = str(min_insync)
    return topics


def is_dead_letter_topic(name: str) -> bool:
    return name.endswith(".dlq")


@dataclass(frozen=True, order=True)
class Rule:
    """One ALLOW ACL: `principal` may do `operation` on the `resource` (topic or group) matched by `name`."""

    principal: str  # User:<school>
    resource: str  # "topic" or "group"
    pattern: str  # "literal" or "prefixed"
    name: str
    operation: str  # "Read", "Write", "Create", "Describe"


def school_acls(schools: list[str], prefix: str = "") -> list[Rule]:
    """Every school principal's ACLs, derived here only from the schools and docs/access.md's rules.

    A school writes (and creates) only its own topics `<school>.` (its events, its slot requests and
    decisions, its dead letters); it reads its own topics and the event topics of every other school,
    never another school's dead letters; its consumer groups are its own `<school>.` groups. `prefix` is
    KAFKA_TOPIC_PREFIX (empty in production). Nothing else is allowed: the broker denies what no ACL allows.
    """
    topics = topic_settings(schools, 1)
    rules = []
    for school in schools:
        principal, own = f"User:{school}", f"{prefix}{school}."
        for operation in ("Write", "Create", "Read", "Describe"):
            rules.append(Rule(principal, "topic", "prefixed", own, operation))
        for name in topics:
            if not name.startswith(f"{school}.") and not is_dead_letter_topic(name):
                rules.append(Rule(principal, "topic", "literal", f"{prefix}{name}", "Read"))
        for operation in ("Read", "Describe"):
            rules.append(Rule(principal, "group", "prefixed", own, operation))
    return sorted(set(rules))


_RESOURCE = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP}
_PATTERN = {"literal": ACLResourcePatternType.LITERAL, "prefixed": ACLResourcePatternType.PREFIXED}


def to_acl(rule: Rule) -> ACL:
    return ACL(rule.principal, "*", ACLOperation[rule.operation.upper()], ACLPermissionType.ALLOW,
               ResourcePattern(_RESOURCE[rule.resource], rule.name, _PATTERN[rule.pattern]))


def of_acl(acl: ACL) -> Rule | None:
    """The Rule an ACL of the broker is, or None when it is of a kind this module never makes."""
    resource = {v: k for k, v in _RESOURCE.items()}.get(acl.resource_pattern.resource_type)
    pattern = {v: k for k, v in _PATTERN.items()}.get(acl.resource_pattern.pattern_type)
    if resource is None or pattern is None or acl.permission_type != ACLPermissionType.ALLOW or acl.host != "*":
        return None
    return Rule(acl.principal, resource, pattern, acl.resource_pattern.resource_name,
                acl.operation.name.capitalize())


def set_credentials(admin: KafkaAdminClient, passwords: dict[str, str], mechanism: str = "SCRAM-SHA-512") -> None:
    """Each school principal's SCRAM credential, set to the password of its file (again at every run)."""
    scram = ScramMechanism.SCRAM_SHA_512 if mechanism == "SCRAM-SHA-512" else ScramMechanism.SCRAM_SHA_256
    result = admin.alter_user_scram_credentials(
        [UserScramCredentialUpsertion(user, scram, password, iterations=SCRAM_ITERATIONS)
         for user, password in sorted(passwords.items())])
    failed = {user: error for user, error in result.items() if error}
    if failed:
        raise RuntimeError(f"setting SCRAM credentials failed: {failed}")
    log.info("SCRAM credentials set for %s", ", ".join(sorted(passwords)))


def acl_changes(wanted: list[Rule], held) -> tuple[list[Rule], list[ACL]]:
    """What to add (rules the broker lacks) and to delete (held ACLs of the kind derived here, not derived)."""
    held_rules = {of_acl(a): a for a in held}
    missing = [r for r in wanted if r not in held_rules]
    # an ACL of a kind never derived here (a DENY, one for a single host) was added by hand: it stays
    extra = [a for rule, a in held_rules.items() if rule is not None and rule not in set(wanted)]
    return missing, extra


def set_acls(admin: KafkaAdminClient, wanted: list[Rule]) -> None:
    """Make the ACLs of the principals in `wanted` exactly `wanted`: add what is missing, delete the rest."""
    held = set()
    for principal in sorted({r.principal for r in wanted}):
        # kafka-python raises the broker's error (SecurityDisabledError without an authorizer)
        acls, _ = admin.describe_acls(ACLFilter(
            principal, None, ACLOperation.ANY, ACLPermissionType.ANY,
            ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY)))
        held |= set(acls)
    missing, extra = acl_changes(wanted, held)
    if missing:
        result = admin.create_acls([to_acl(r) for r in missing])
        if result["failed"]:
            raise RuntimeError(f"creating ACLs failed: {result['failed']}")
        log.info("%d ACLs added", len(missing))
    if extra:
        admin.delete_acls([ACLFilter(a.principal, a.host, a.operation, a.permission_type,
                                     ResourcePatternFilter(a.resource_pattern.resource_type,
                                                           a.resource_pattern.resource_name,
                                                           a.resource_pattern.pattern_type)) for a in extra])
        log.info("%d ACLs no longer derived, deleted", len(extra))
    log.info("ACLs of %d principals up to date", len({r.principal for r in wanted}))


def school_passwords(schools: list[str], secrets_dir: Path) -> dict[str, str]:
    """Each school's Kafka password, from `<school>.kafka.password` (`make secrets` writes them)."""
    return {s: read_secret(secrets_dir / f"{s}.kafka.password", f"kafka-init ({s})") for s in schools}


def apply(admin: KafkaAdminClient, wanted: dict[str, dict[str, str]], partitions: int, replication: int) -> None:
    """Create what is missing, then set every topic's configuration and partition count."""
    existing = set(admin.list_topics())
    missing = [t for t in wanted if t not in existing]
    if missing:
        try:
            admin.create_topics([NewTopic(t, partitions, replication, topic_configs=wanted[t]) for t in missing])
        except TopicAlreadyExistsError:
            pass
        log.info("created %s", ", ".join(missing))
    present = [t for t in wanted if t in existing]
    if not present:
        return
    admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, t, configs=wanted[t]) for t in present],
                        incremental=True)
    log.info("configuration set on %s", ", ".join(present))
    grow = {}
    for described in admin.describe_topics(present):
        name, held = described["name"], described["partitions"]
        if len(held) < partitions:
            grow[name] = NewPartitions(partitions)
        replicas = min((len(p["replica_nodes"]) for p in held), default=replication)
        if replicas < replication:
            log.warning("%s has %d replicas, TOPIC_REPLICATION is %d: reassign its partitions "
                        "(docs/operations.md)", name, replicas, replication)
    if grow:
        admin.create_partitions(grow)
        log.info("partitions raised to %d on %s", partitions, ", ".join(grow))


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    schools = os.environ["SCHOOLS"].split()
    partitions = int(os.environ.get("TOPIC_PARTITIONS", "3"))
    replication = int(os.environ.get("TOPIC_REPLICATION", "1"))
    wanted = topic_settings(schools, int(os.environ.get("MIN_INSYNC_REPLICAS", "1")))
    protocol = os.environ.get("KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT"
    mechanism = os.environ.get("KAFKA_SASL_MECHANISM") or "SCRAM-SHA-512"
    passwords, security = {}, security_options(protocol, "", "", "")
    try:
        if protocol != "PLAINTEXT":
            admin_file = Path(os.environ.get("KAFKA_PASSWORD_FILE") or "/run/secrets/kafka-admin.password")
            security = security_options(protocol, mechanism, os.environ.get("KAFKA_USERNAME") or "admin",
                                        read_secret(admin_file, "KAFKA_PASSWORD_FILE"))
            passwords = school_passwords(schools, Path(os.environ.get("SECRETS_DIR") or "/run/secrets"))
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    deadline = time.monotonic() + 120
    while True:
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="kafka-init", request_timeout_ms=10000,
                                     **security)
            break
        except Exception as exc:  # the broker may still be starting: compose restarts nothing here
            if time.monotonic() > deadline:
                raise
            log.warning("broker not reachable yet (%s); retrying", exc)
            time.sleep(2)
    try:
        apply(admin, wanted, partitions, replication)
        if passwords:
            set_credentials(admin, passwords, mechanism)
            set_acls(admin, school_acls(schools))
    finally:
        admin.close()
    log.info("%d topics up to date", len(wanted))
    return 0


if __name__ == "__main__":
    sys.exit(main())
