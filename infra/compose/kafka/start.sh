#!/usr/bin/env bash
# Start script of the compose Kafka broker (apache/kafka image, KRaft, SASL/SCRAM).
#
# In KRaft the first SCRAM user cannot be created through the API (nobody could authenticate to do it):
# it must be written into the metadata log when the storage is formatted (`kafka-storage.sh format
# --add-scram`). The image's own start-up formats without SCRAM users, so this script formats the log
# directory first, once, with the admin (super) user, then hands over to the image's entry point, which
# finds the directory already formatted. Everything else (users per org, the hub's user, ACLs) is created
# by `ioxhub provision` (the ioxhub-init service) as this admin.
# Passwords: letters and digits only (they are embedded in SCRAM and JAAS strings).
set -euo pipefail
: "${IOXHUB_KAFKA_ADMIN_USERNAME:?}" "${IOXHUB_KAFKA_ADMIN_PASSWORD:?}" "${CLUSTER_ID:?}" "${KAFKA_LOG_DIRS:?}"

if [ ! -f "${KAFKA_LOG_DIRS}/meta.properties" ]; then
  props="$(mktemp)"
  cat > "${props}" <<PROPS
process.roles=${KAFKA_PROCESS_ROLES}
node.id=${KAFKA_NODE_ID}
controller.quorum.voters=${KAFKA_CONTROLLER_QUORUM_VOTERS}
controller.listener.names=${KAFKA_CONTROLLER_LISTENER_NAMES}
listeners=${KAFKA_LISTENERS}
listener.security.protocol.map=${KAFKA_LISTENER_SECURITY_PROTOCOL_MAP}
inter.broker.listener.name=${KAFKA_INTER_BROKER_LISTENER_NAME}
log.dirs=${KAFKA_LOG_DIRS}
PROPS
  /opt/kafka/bin/kafka-storage.sh format --cluster-id "${CLUSTER_ID}" --config "${props}" \
    --add-scram "SCRAM-SHA-512=[name=${IOXHUB_KAFKA_ADMIN_USERNAME},password=${IOXHUB_KAFKA_ADMIN_PASSWORD}]"
  rm -f "${props}"
fi

# Client settings for the health check (kafka-broker-api-versions.sh as the admin), owner-only.
umask 077
cat > /tmp/ioxhub-admin-client.properties <<PROPS
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="${IOXHUB_KAFKA_ADMIN_USERNAME}" password="${IOXHUB_KAFKA_ADMIN_PASSWORD}";
PROPS
umask 022

exec /etc/kafka/docker/run
