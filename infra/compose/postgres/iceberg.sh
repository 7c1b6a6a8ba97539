#!/bin/sh
# The Iceberg catalog's database on the compose Postgres (docker-entrypoint-initdb.d: run once, when the
# data volume is empty; on an older volume run it by hand, see docs/tables.md "Compose").
#   role iceberg         owns database iceberg: the hub's services (IOXHUB_ICEBERG_CATALOG_URI)
#   role iceberg_reader  SELECT only: the web server and outside engines (Spark, Trino, pyiceberg)
# The catalog's two tables are created here, as the Iceberg JDBC catalog defines them (the ones pyiceberg's
# SQL catalog and Iceberg's JdbcCatalog use), so a read-only client never has to create them.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v owner_password="$ICEBERG_DB_PASSWORD" -v reader_password="$ICEBERG_READER_PASSWORD" <<'SQL'
CREATE ROLE iceberg LOGIN PASSWORD :'owner_password';
CREATE ROLE iceberg_reader LOGIN PASSWORD :'reader_password';
CREATE DATABASE iceberg OWNER iceberg;
\connect iceberg
SET ROLE iceberg;
CREATE TABLE iceberg_tables (
    catalog_name VARCHAR(255) NOT NULL,
    table_namespace VARCHAR(255) NOT NULL,
    table_name VARCHAR(255) NOT NULL,
    metadata_location VARCHAR(1000),
    previous_metadata_location VARCHAR(1000),
    iceberg_type VARCHAR(5),
    PRIMARY KEY (catalog_name, table_namespace, table_name)
);
CREATE TABLE iceberg_namespace_properties (
    catalog_name VARCHAR(255) NOT NULL,
    namespace VARCHAR(255) NOT NULL,
    property_key VARCHAR(255) NOT NULL,
    property_value VARCHAR(1000) NOT NULL,
    PRIMARY KEY (catalog_name, namespace, property_key)
);
GRANT CONNECT ON DATABASE iceberg TO iceberg_reader;
GRANT USAGE ON SCHEMA public TO iceberg_reader;
GRANT SELECT ON iceberg_tables, iceberg_namespace_properties TO iceberg_reader;
SQL
