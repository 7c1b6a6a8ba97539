# The Airflow image of the compose deployment: the official Airflow 3 image plus the ioxhub package,
# installed from the project's lock (Airflow's constraints URL is not reachable everywhere; the lock is).
# Build context: the repository root (see docker-compose.yml); airflow.Dockerfile.dockerignore keeps the
# context to the files below.
FROM apache/airflow:3.3.2-python3.11

# Where `ioxhub provision` (the ioxhub-init service) keeps generated secrets: a named volume mounts here and
# takes this directory's owner, so the airflow user (uid 50000) can write it.
USER root
RUN mkdir -p /var/lib/ioxhub && chown airflow:root /var/lib/ioxhub && chmod 700 /var/lib/ioxhub
# The same for the runs' metrics textfiles and lineage events (volume ioxhub-data, read by ioxhub-metrics).
RUN mkdir -p /opt/airflow/ioxhub/lineage && chown -R airflow:root /opt/airflow/ioxhub
USER airflow

# Dependencies first (cached while only the code changes). apache-airflow is repeated so that pip keeps
# the image's Airflow instead of resolving another one.
COPY --chown=airflow:root requirements.lock /opt/ioxhub/requirements.lock
RUN pip install --no-cache-dir "apache-airflow==3.3.2" -r /opt/ioxhub/requirements.lock

# The package, editable, so that ioxhub.settings.PROJECT_ROOT is /opt/ioxhub (schemas/, infra/orgs.yaml).
COPY --chown=airflow:root pyproject.toml README.md /opt/ioxhub/
COPY --chown=airflow:root ioxhub /opt/ioxhub/ioxhub
COPY --chown=airflow:root producers /opt/ioxhub/producers
COPY --chown=airflow:root consumers /opt/ioxhub/consumers
COPY --chown=airflow:root app /opt/ioxhub/app
COPY --chown=airflow:root schemas /opt/ioxhub/schemas
COPY --chown=airflow:root infra/orgs.yaml /opt/ioxhub/infra/orgs.yaml
RUN pip install --no-cache-dir --no-deps -e /opt/ioxhub \
 && python -c "import asyncpg, psycopg2, ioxhub.provision" \
 && ioxhub --help > /dev/null
# (asyncpg + psycopg2 come with the official image's postgres extra: Airflow 3 needs both for a Postgres
# metadata DB; the check fails the build if installing the lock ever removed them.)
