"""Producer SDK: read partner files, validate, chunk, sign and publish to Kafka."""
