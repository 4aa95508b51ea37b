#!/bin/bash
# As in the official image: the broker's API versions, asked over the wire (compose's health check).
exec java -Xmx64m -XX:TieredStopAtLevel=1 -Xshare:auto -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.xml \
  -cp "/opt/kafka/libs/*" org.apache.kafka.tools.BrokerApiVersionsCommand "$@"
