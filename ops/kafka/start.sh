#!/usr/bin/env bash
# The Kafka container's command (docker-compose.yml mounts this file): SASL/SCRAM before the image's own start.
#
# 1. The broker's JAAS file, written into the container's /tmp from the super user's password file
#    (/run/secrets/kafka-admin.password, written by `make secrets`): the SASL listener's login and the
#    credential the broker uses towards itself. No password in the compose file or the environment.
# 2. On the first start of an empty data volume, the storage is formatted with the super user's SCRAM
#    credential (kafka-storage.sh --add-scram, KRaft's way to bootstrap SCRAM): kafka-init then logs in as
#    that user and sets every school's credential and ACLs (ops/topics.py). A formatted volume is left as
#    it is (--ignore-formatted); the image's own format step then finds it formatted too.
# 3. The image's start script, unchanged.
set -euo pipefail

password_file=/run/secrets/kafka-admin.password
if [[ ! -r "$password_file" ]]; then
  echo "cannot read $password_file: run \`sudo make secrets\` on the host (docs/operations.md, \"Secrets\")" >&2
  exit 1
fi
password=$(<"$password_file")
admin=${KAFKA_SUPER_USER_NAME:-admin}

umask 077
jaas=/tmp/kafka_server_jaas.conf
cat > "$jaas" <<JAAS
KafkaServer {
  org.apache.kafka.common.security.scram.ScramLoginModule required
  username="$admin"
  password="$password";
};
JAAS
export KAFKA_OPTS="${KAFKA_OPTS:-} -Djava.security.auth.login.config=$jaas"

if [[ ! -f "$KAFKA_LOG_DIRS/meta.properties" ]]; then
  props=/tmp/format.properties
  cat > "$props" <<PROPS
process.roles=$KAFKA_PROCESS_ROLES
node.id=$KAFKA_NODE_ID
controller.quorum.voters=$KAFKA_CONTROLLER_QUORUM_VOTERS
controller.listener.names=$KAFKA_CONTROLLER_LISTENER_NAMES
listeners=$KAFKA_LISTENERS
advertised.listeners=$KAFKA_ADVERTISED_LISTENERS
listener.security.protocol.map=$KAFKA_LISTENER_SECURITY_PROTOCOL_MAP
inter.broker.listener.name=$KAFKA_INTER_BROKER_LISTENER_NAME
sasl.enabled.mechanisms=$KAFKA_SASL_ENABLED_MECHANISMS
sasl.mechanism.inter.broker.protocol=$KAFKA_SASL_MECHANISM_INTER_BROKER_PROTOCOL
log.dirs=$KAFKA_LOG_DIRS
PROPS
  /opt/kafka/bin/kafka-storage.sh format --ignore-formatted --cluster-id "$CLUSTER_ID" -c "$props" \
    --add-scram "SCRAM-SHA-512=[name=$admin,password=$password]"
  rm -f "$props"
fi
unset password

exec /etc/kafka/docker/run
