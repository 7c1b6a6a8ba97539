"""The `ioxhub` command: wiring only. Each verb parses its options and calls one function elsewhere.

Expected mistakes (bad input, a server that is down, a malformed file) are raised as subclasses of
`ioxhub.errors.IoxhubError`; `main()` prints them as one clear line on stderr and exits 2, never with a
traceback.
"""
from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

import typer

from ioxhub.errors import IoxhubError

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__.splitlines()[0])
JSON = typer.Option(False, "--json", help="Machine-readable JSON on stdout (stable keys, no secrets; docs/cli-json.md).")


@app.callback()
def _logging() -> None:
    """Log lines as IOXHUB_LOG_FORMAT says (text: unchanged; json: one JSON object a line on stderr)."""
    from ioxhub.logs import configure
    from ioxhub.settings import get_settings
    configure(get_settings())


# ---------------------------------------------------------------------------------------- stack
stack_app = typer.Typer(no_args_is_help=True, help="The local stack: SeaweedFS (S3), tansu (Kafka), optionally Airflow.")
app.add_typer(stack_app, name="stack")


@stack_app.command("up")
def stack_up(with_airflow: bool = typer.Option(False, "--airflow", help="Also start `airflow standalone` on dags/."),
             with_web: bool = typer.Option(False, "--web", help="Also start `ioxhub serve` (the portal and API; "
                                           "needs `ioxhub provision` first for its read-only storage identity).")) -> None:
    """Start the local servers (durable: Kafka data lives in S3), wait until they answer, print the endpoints."""
    from app.console import print_stack_up
    from ioxhub.settings import get_settings
    from ioxhub.stack import local
    result = local.up(get_settings(), with_airflow=with_airflow, with_web=with_web)
    print_stack_up(result, local.endpoints(result.settings))


@stack_app.command("down")
def stack_down() -> None:
    """Stop exactly the servers `stack up` started (by pid file); data stays."""
    from app.console import print_stack_down
    from ioxhub.settings import get_settings
    from ioxhub.stack import local
    print_stack_down(local.down(get_settings()))


@stack_app.command("status")
def stack_status(as_json: bool = JSON) -> None:
    """Each service: running, stopped or leftover, pid, endpoint, and a real health probe; exit 1 if one is unhealthy or left over."""
    from app.console import print_stack_status, show, stack_status_json
    from ioxhub.settings import get_settings
    from ioxhub.stack import local
    states = local.status(get_settings())
    show(states, as_json, print_stack_status, stack_status_json)
    raise typer.Exit(1 if any(s.leftovers or (s.running and s.health != "ok") for s in states) else 0)


@stack_app.command("logs")
def stack_logs(service: str | None = typer.Argument(None, help="seaweedfs, tansu, airflow or web (default: all)."),
               lines: int = typer.Option(40, "-n", "--lines", help="How many last lines.")) -> None:
    """The last lines of the servers' logs."""
    from ioxhub.settings import get_settings
    from ioxhub.stack import local
    for name, text in local.logs(get_settings(), service, lines):
        typer.echo(f"==> {name} <==\n{text}")


# ---------------------------------------------------------------------------------------- provision
@app.command("provision")
def provision_cmd(dry_run: bool = typer.Option(False, "--dry-run", help="Show what would change; change nothing."),
                  as_json: bool = JSON) -> None:
    """Apply infra/orgs.yaml (topics, bucket, storage identities, Kafka users and ACLs) idempotently."""
    from app.console import print_provision_report, provision_json, show
    from ioxhub.provision.apply import provision
    show(provision(dry_run=dry_run), as_json, print_provision_report, provision_json)


# ---------------------------------------------------------------------------------------- schemas, keys
schemas_app = typer.Typer(no_args_is_help=True, help="The Avro schema registry (schemas/<name>/vN.avsc).")
app.add_typer(schemas_app, name="schemas")


def _registry(schemas_dir: str | None):
    from pathlib import Path

    from ioxhub.contracts.registry import Registry, get_registry
    return Registry.load(Path(schemas_dir)) if schemas_dir else get_registry()


@schemas_app.command("list")
def schemas_list(schemas_dir: str | None = typer.Option(None, "--dir", help="Schema directory (default: settings.schemas_dir)."),
                 as_json: bool = JSON) -> None:
    """Every schema version with its fingerprint and Confluent id."""
    from app.console import print_schemas, schemas_json, show
    show(_registry(schemas_dir), as_json, print_schemas, schemas_json)


@schemas_app.command("check")
def schemas_check(schemas_dir: str | None = typer.Option(None, "--dir", help="Schema directory (default: settings.schemas_dir)."),
                  as_json: bool = JSON) -> None:
    """Refuse incompatible schema evolution (BACKWARD_TRANSITIVE, no removal of a required field); exit 1 if any."""
    from app.console import print_schemas_check, schemas_check_json, show
    from ioxhub.contracts.compat import check_registry
    registry = _registry(schemas_dir)
    pairs, problems = check_registry(registry)
    show(problems, as_json, partial(print_schemas_check, registry=registry, pairs=pairs),
         partial(schemas_check_json, registry=registry, pairs=pairs))
    raise typer.Exit(1 if problems else 0)


keys_app = typer.Typer(no_args_is_help=True, help="Ed25519 signing keys of the orgs.")
app.add_typer(keys_app, name="keys")


@keys_app.command("generate")
def keys_generate(
    org: str = typer.Option(..., "--org", help="Org id, e.g. WCO."),
    key_id: str | None = typer.Option(None, "--key-id", help="Key id (default: <org>-<date>-<random>)."),
    valid_from: str | None = typer.Option(None, "--valid-from", help="ISO time the key becomes valid (default: now)."),
) -> None:
    """Write a new private key (owner-only) and print the public key for infra/orgs.yaml."""
    from app.console import print_generated_key
    from ioxhub.keys import generate_org_key, parse_time_option
    print_generated_key(generate_org_key(org, key_id, valid_from=parse_time_option(valid_from)))


@keys_app.command("retire")
def keys_retire(
    key_id: str = typer.Argument(..., help="Key id of the local keyring (see `ioxhub keys list`)."),
    at: str | None = typer.Option(None, "--at", help="ISO time the key stops being valid (default: now)."),
) -> None:
    """Rotation: end a key's validity window; records it signs from then on are quarantined as expired-key."""
    from app.console import print_retired_key
    from ioxhub.keys import parse_time_option, retire_key
    print_retired_key(retire_key(key_id, parse_time_option(at, "--at")))


@keys_app.command("list")
def keys_list(as_json: bool = JSON) -> None:
    """The keys ingest trusts: infra/orgs.yaml signing_keys + the local keyring."""
    from app.console import print_trust_store, show, trust_store_json
    from ioxhub.keys import load_trust_store
    show(load_trust_store(), as_json, print_trust_store, trust_store_json)


@keys_app.command("jwks")
def keys_jwks(org: list[str] = typer.Option([], "--org", help="Only this org (repeatable; default: every org)."),
              out_dir: str | None = typer.Option(None, "--out", help="Directory of the <ORG>.json files "
                                                                    "(default: jwks/ beside the orgs file)."),
              as_json: bool = JSON) -> None:
    """Write each org's public keys of infra/orgs.yaml as a JWK Set (RFC 7517/8037) to <out>/<ORG>.json."""
    import json

    from app.console import show
    from app.console.partner import jwks_written_json, print_jwks_written
    from ioxhub.jwks import write_jwks
    from ioxhub.orgs import load_orgs
    from ioxhub.settings import get_settings
    orgs_file = get_settings().orgs_file
    written = write_jwks(load_orgs(orgs_file), Path(out_dir) if out_dir else orgs_file.parent / "jwks", org or None)
    counts = {o: (p, len(json.loads(p.read_text())["keys"])) for o, p in written.items()}
    show(counts, as_json, print_jwks_written, jwks_written_json)


# ---------------------------------------------------------------------------------------- conformance
@app.command("conformance")
def conformance_cmd(
        records_file: str | None = typer.Argument(None, help="JSON-lines records file (schemas/vectors/README.md)."),
        topic: str | None = typer.Option(None, "--topic", help="Read the records from this topic instead."),
        from_offset: int = typer.Option(0, "--from-offset", help="First offset read (each partition)."),
        to_offset: int | None = typer.Option(None, "--to-offset", help="Stop before this offset (default: the end)."),
        partition: int | None = typer.Option(None, "--partition", help="Only this partition of --topic."),
        keys_file: list[str] = typer.Option([], "--keys", help="Trust the keys of this JWKS file (repeatable) "
                                                              "instead of orgs.yaml and the local keyring."),
        as_json: bool = JSON) -> None:
    """Check records against the partner contract with the ingest's own checks; one line per failing
    record; exit 0 when all conform, 1 otherwise."""
    from app.console import show
    from app.console.partner import conformance_json, print_conformance
    from ioxhub import conformance
    from ioxhub.jwks import load_jwks
    from ioxhub.keys import load_trust_store
    from ioxhub.settings import get_settings
    from ioxhub.signing import TrustStore
    if (records_file is None) == (topic is None):
        raise IoxhubError("give a records file or --topic (one of them)")
    settings = get_settings()
    trust = (TrustStore(k for f in keys_file for k in load_jwks(Path(f))) if keys_file
             else load_trust_store(settings) if settings.require_signatures else None)
    records = (conformance.read_records(Path(records_file)) if records_file
               else conformance.fetch_records(settings, topic, from_offset, to_offset, partition))
    report = conformance.check(records, trust)
    show(report, as_json, print_conformance, conformance_json)
    raise typer.Exit(0 if report.ok else 1)


# ---------------------------------------------------------------------------------------- publish, samples
samples_app = typer.Typer(no_args_is_help=True, help="Sample feeds of the partner IOs (deterministic, messy, with planted effects).")
app.add_typer(samples_app, name="samples")


@samples_app.command("generate")
def samples_generate(
        out_dir: str = typer.Argument(..., help="Directory to write the feeds into (created)."),
        seed: int = typer.Option(0, "--seed", help="Random seed: same seed and scale, same bytes."),
        scale: float = typer.Option(1.0, "--scale", help="Size of the bulk WTO file: 47,850 rows x scale (21 = ~1M, 209 = ~10M).")) -> None:
    """Write the sample feeds, a column mapping next to each, the policy timeline and manifest.json."""
    from app.console.samples import generate_and_report
    generate_and_report(out_dir, seed, scale)


publish_app = typer.Typer(no_args_is_help=True, help="Publish datasets and policy updates to the org's Kafka topics.")
app.add_typer(publish_app, name="publish")


@publish_app.command("dataset")
def publish_dataset_cmd(
        files: list[str] = typer.Argument(..., help="Data files of one release (CSV, JSON Lines, SDMX-CSV 1.0/2.0/3.0, SDMX-JSON, SDMX-ML 2.1/3.0)."),
        org: str = typer.Option(..., "--org", help="Publishing org id, e.g. WCO."),
        dataset: str = typer.Option(..., "--dataset", help="Dataset id, e.g. WCO-HAZWASTE-SEIZURES."),
        fmt: str | None = typer.Option(None, "--format", help="csv, jsonl, sdmx-csv, sdmx-json or sdmx-ml (default: from the extension)."),
        structure: str | None = typer.Option(None, "--structure", help="SDMX-ML structure file with the data's DSD (SDMX formats)."),
        mapping: str | None = typer.Option(None, "--mapping", help="Column mapping file, YAML or JSON (default: FILE.mapping.yaml if present)."),
        maps: list[str] = typer.Option([], "--map", help="FIELD=COLUMN (fields: indicator, ref_area, counterpart_area, commodity, period, value, unit, unit_mult, obs_status, attributes.NAME)."),
        consts: list[str] = typer.Option([], "--const", help="FIELD=VALUE for every row."),
        defaults: list[str] = typer.Option([], "--default", help="FIELD=VALUE where the cell is empty."),
        dims: list[str] = typer.Option([], "--dim", help="COLUMN kept as an extra dimension of the observation key (repeatable; 'auto': the file's SDMX dimensions not mapped to a field, the default)."),
        strict: bool = typer.Option(False, "--strict", help="Refuse the whole release if any row is rejected (nothing sent)."),
        rejects: str | None = typer.Option(None, "--rejects", help="Rejects CSV (default: FILE.rejects.csv)."),
        release_id: str | None = typer.Option(None, "--release-id", help="Name the release (default: a hash of its content)."),
) -> None:
    """Validate, chunk and send one dataset release; exit 1 if any row was rejected."""
    from app.console.publish import run_publish_dataset
    raise typer.Exit(run_publish_dataset(org, dataset, files, fmt=fmt, mapping_file=mapping, maps=maps, consts=consts,
                                         defaults=defaults, strict=strict, rejects=rejects, release_id=release_id,
                                         structure=structure, dims=dims))


@publish_app.command("policy")
def publish_policy_cmd(
        file: str = typer.Argument(..., help="YAML or JSON file: one policy update or a list of them."),
        org: str = typer.Option(..., "--org", help="Publishing org id, e.g. WCO."),
        strict: bool = typer.Option(False, "--strict", help="Refuse the whole file if any update is invalid."),
        rejects: str | None = typer.Option(None, "--rejects", help="Rejects CSV (default: FILE.rejects.csv)."),
) -> None:
    """Validate and send policy updates; exit 1 if any update was rejected."""
    from app.console.publish import run_publish_policy
    raise typer.Exit(run_publish_policy(org, file, strict=strict, rejects=rejects))


# ---------------------------------------------------------------------------------------- status
@app.command("status")
def status_cmd(as_json: bool = JSON,
               check: bool = typer.Option(False, "--check", help="Only the problems, one line each; exit 1 if any, else print ok."),
               max_lag: int | None = typer.Option(None, "--max-lag", help="--check: most records a topic may lag (default: IOXHUB_CHECK_MAX_LAG)."),
               staging_hours: float | None = typer.Option(None, "--staging-hours", help="--check: longest a release may wait in staging/ (default: IOXHUB_CHECK_STAGING_HOURS)."),
               quarantine_rate: float | None = typer.Option(None, "--quarantine-rate", help="--check: highest quarantined share of a last run's events (default: IOXHUB_CHECK_QUARANTINE_RATE)."),
               key_days: float | None = typer.Option(None, "--key-days", help="--check: a key ending within this many days is a problem (default: IOXHUB_CHECK_KEY_EXPIRY_DAYS).")) -> None:
    """The last run of each DAG with its counts, the lag of each topic, and releases waiting in staging/."""
    from app.console import print_status, show
    from ioxhub.status import hub_status

    if check:
        from app.console.ops import print_check
        from ioxhub.health import Thresholds, check_hub
        from ioxhub.settings import get_settings
        limits = Thresholds.from_settings(get_settings(), max_lag=max_lag, staging_hours=staging_hours,
                                          quarantine_rate=quarantine_rate, key_expiry_days=key_days)
        result = check_hub(get_settings(), limits)
        print_check(result, as_json)
        raise typer.Exit(0 if result["ok"] else 1)
    show(hub_status(), as_json, print_status)


@app.command("replay")
def replay_cmd(org: str = typer.Option(..., "--org", help="Org id, e.g. WCO."),
               dataset: str = typer.Option(..., "--dataset", help="Dataset id."),
               since: str | None = typer.Option(None, "--since", help="Events received from this ISO time (with a timezone)."),
               until: str | None = typer.Option(None, "--until", help="Events received before this ISO time."),
               first_offset: int | None = typer.Option(None, "--first-offset", help="Events from this Kafka offset."),
               last_offset: int | None = typer.Option(None, "--last-offset", help="Events up to this Kafka offset."),
               as_json: bool = JSON) -> None:
    """Re-harmonize a dataset's applied releases from raw/ with today's rules; unchanged ones are left alone."""
    from app.console import show
    from app.console.ops import print_replay
    from ioxhub.ingest.replay import replay
    from ioxhub.keys import parse_time_option

    show(replay(org, dataset, since=parse_time_option(since, "--since"), until=parse_time_option(until, "--until"),
                first_offset=first_offset, last_offset=last_offset), as_json, print_replay)


quarantine_app = typer.Typer(no_args_is_help=True, help="The dead-letter path: list, show and retry refused events.")
app.add_typer(quarantine_app, name="quarantine")


@quarantine_app.command("list")
def quarantine_list(org: str | None = typer.Option(None, "--org", help="Only this org's letters."),
                    reason: str | None = typer.Option(None, "--reason", help="Only this reason, e.g. unknown-key."),
                    since: str | None = typer.Option(None, "--since", help="Quarantined from this ISO time (with a timezone)."),
                    until: str | None = typer.Option(None, "--until", help="Quarantined before this ISO time."),
                    as_json: bool = JSON) -> None:
    """Quarantined events and observations, newest first, with their id, reason and retries."""
    from app.console import show
    from app.console.ops import letters_json, print_letters
    from ioxhub.ingest.letters import read_letters
    from ioxhub.keys import parse_time_option
    from ioxhub.storage import ObjectStore

    letters = read_letters(ObjectStore(), org=org, reason=reason, since=parse_time_option(since, "--since"),
                           until=parse_time_option(until, "--until"))
    show(letters, as_json, print_letters, letters_json)


@quarantine_app.command("show")
def quarantine_show(letter: str = typer.Argument(..., help="TOPIC:PARTITION:OFFSET[:REASON] (the id of `quarantine list`)."),
                    as_json: bool = JSON) -> None:
    """One letter: reason, detail, headers, its release, retries, and the traceback of an internal error."""
    from app.console import show
    from app.console.ops import print_letter
    from ioxhub.contracts.registry import get_registry
    from ioxhub.ingest.letters import find_letters, letter_detail
    from ioxhub.storage import ObjectStore

    store = ObjectStore()
    show([letter_detail(store, l, get_registry()) for l in find_letters(store, letter)], as_json, print_letter)


@quarantine_app.command("retry")
def quarantine_retry(letters: list[str] = typer.Argument(None, help="Letter ids to retry (TOPIC:PARTITION:OFFSET[:REASON])."),
                     release: str | None = typer.Option(None, "--release", help="ORG/DATASET/RELEASE: every quarantined event of that release."),
                     as_json: bool = JSON) -> None:
    """Resubmit quarantined events through the ingest after a fix; letters are kept and marked; exit 1 if any is refused again."""
    from app.console import show
    from app.console.ops import print_retry
    from ioxhub.ingest.retry import RetryError, retry

    parts = release.split("/") if release else None
    if parts is not None and len(parts) != 3:
        raise RetryError(f"--release {release!r}: expected ORG/DATASET/RELEASE")
    result = retry(letters or [], tuple(parts) if parts else None)
    show(result, as_json, print_retry)
    raise typer.Exit(1 if result["outcomes"].get("quarantined") else 0)


@app.command("ingest")
def ingest_cmd(kind: str = typer.Argument(..., help="datasets or policies"),
               max_records: int | None = typer.Option(None, help="Most records to read (default: settings)."),
               follow: bool = typer.Option(False, "--follow", help="Keep running: apply releases as they arrive, until SIGINT/SIGTERM."),
               derive: bool = typer.Option(False, "--derive", help="With --follow: derive the evidence datasets once caught up after new data."),
               metrics_port: int | None = typer.Option(None, "--metrics-port", help="With --follow: serve the Prometheus metrics on this port (127.0.0.1) while following."),
               as_json: bool = JSON) -> None:
    """Run one ingest outside Airflow (the DAGs call the same function), or keep following the topics."""
    from app.console import print_counts, print_follow_event, print_json

    if kind not in ("datasets", "policies"):
        raise IoxhubError(f"ingest: KIND is datasets or policies, not {kind!r}")
    if (derive or metrics_port is not None) and not follow:
        raise IoxhubError("ingest: --derive and --metrics-port go with --follow")
    if follow:
        from app.follow import run_follow

        if metrics_port is not None:
            from ioxhub.metrics_exporter import serve_metrics

            server, _ = serve_metrics(metrics_port)
        try:
            run_follow(kind, derive, partial(print_follow_event, as_json=as_json))
        finally:
            if metrics_port is not None:
                server.shutdown()
        return
    from ioxhub.ingest.run import ingest

    summary = ingest(kind, max_records=max_records, run_id="cli")
    print_json(summary) if as_json else print_counts(f"ingest {kind}", summary)


# ---------------------------------------------------------------------------------------- web: serve, apikeys
apikeys_app = typer.Typer(no_args_is_help=True, help="API keys of the web application (`ioxhub serve`).")
app.add_typer(apikeys_app, name="apikeys")


def _hub_store():
    from ioxhub.storage import ObjectStore
    return ObjectStore()


@apikeys_app.command("create")
def apikeys_create(name: str = typer.Option(..., "--name", help="Who the key is for (e.g. jane.doe, who-pipeline)."),
                   analyst: bool = typer.Option(False, "--analyst", help="An analyst key: curated/ and harmonized/."),
                   org: str | None = typer.Option(None, "--org", help="An org key: also this org's raw/ and quarantine/."),
                   as_json: bool = JSON) -> None:
    """Create an API key and print it once (only its salted hash is stored, in catalog/apikeys/)."""
    from app.console import show
    from app.console.web import key_created_json, print_key_created
    from ioxhub.apikeys import create_key
    if analyst == (org is not None):
        raise IoxhubError("give --analyst or --org ORG (one of them)")
    show(create_key(_hub_store(), name, "analyst" if analyst else "org", org), as_json, print_key_created, key_created_json)


@apikeys_app.command("list")
def apikeys_list(as_json: bool = JSON) -> None:
    """The API keys: id, name, kind, org, created, revoked (never a secret)."""
    from app.console import show
    from app.console.web import print_keys
    from ioxhub.apikeys import list_keys
    show(list_keys(_hub_store()), as_json, print_keys)


@apikeys_app.command("revoke")
def apikeys_revoke(key: str = typer.Argument(..., help="Key id, or name (revokes every active key of that name)."),
                   as_json: bool = JSON) -> None:
    """Revoke API keys: the server refuses them within IOXHUB_WEB_KEY_CACHE_SECONDS."""
    from app.console import show
    from app.console.web import print_revoked
    from ioxhub.apikeys import revoke_key
    show(revoke_key(_hub_store(), key), as_json, print_revoked)


@app.command("serve")
def serve_cmd(host: str | None = typer.Option(None, "--host", help="Address to listen on (default: IOXHUB_WEB_HOST, 127.0.0.1)."),
              port: int | None = typer.Option(None, "--port", help="Port (default: IOXHUB_WEB_PORT, 8765)."),
              workers: int | None = typer.Option(None, "--workers", min=1, help="Server processes (default: IOXHUB_WEB_WORKERS, 1).")) -> None:
    """Serve the web application: the REST API (/api/v1), SDMX REST, schemas over HTTP and the portal."""
    import copy
    import os
    import secrets

    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    from app.console.web import print_serving
    from app.web.app import create_app, settings_for_web
    from ioxhub.settings import env_name, get_settings
    settings = settings_for_web(get_settings(), host, port)
    workers = workers or settings.web_workers
    log_config = None                       # json: the hub's handler (configured already) stays
    if settings.log_format == "text":       # the hub's INFO lines beside uvicorn's, in every worker
        log_config = copy.deepcopy(LOGGING_CONFIG)
        log_config["formatters"]["hub"] = {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
        log_config["handlers"]["hub"] = {"class": "logging.StreamHandler", "formatter": "hub", "stream": "ext://sys.stderr"}
        log_config["loggers"].update({name: {"handlers": ["hub"], "level": "INFO", "propagate": False}
                                      for name in ("app", "consumers", "ioxhub")})
    print_serving(settings.web_host, settings.web_port)
    if workers == 1:
        uvicorn.run(create_app(settings), host=settings.web_host, port=settings.web_port, log_level="info",
                    log_config=log_config)
        return
    # Worker processes build the app from the environment; one session secret for all of them.
    if not settings.web_session_secret:
        os.environ[env_name("web_session_secret")] = secrets.token_hex(32)
    uvicorn.run("app.web.app:create_app", factory=True, host=settings.web_host, port=settings.web_port,
                workers=workers, log_level="info", log_config=log_config)


# ---------------------------------------------------------------------------------------- datasets, pull, report
@app.command("datasets")
def datasets_cmd(name: str | None = typer.Argument(None, help="A dataset: list its snapshots kept."),
                 as_json: bool = JSON) -> None:
    """The catalog: every dataset with its publishers, rows, coverage, snapshot (number and id) and update
    time; with NAME, that dataset's snapshots (number, id, time, operation, release) to pull --as-of."""
    from consumers.access import dataset_entry, list_datasets
    from app.console import print_datasets, print_snapshots, show

    if name is None:
        show(list_datasets(), as_json, print_datasets)
    else:
        show(dataset_entry(name), as_json, print_snapshots)


@app.command("pull")
def pull_cmd(
    dataset: str = typer.Argument(..., help="Dataset name (see `ioxhub datasets`)."),
    where: list[str] = typer.Option([], "--where", help="COLUMN=VALUE filter; also !=, >=, >, <=, < and COLUMN=in:V1,V2 (repeat: equalities of one column = OR, the rest = AND)."),
    columns: str | None = typer.Option(None, "--columns", help="Comma-separated columns to keep."),
    as_of: str | None = typer.Option(None, "--as-of", help="Snapshot number or id (`ioxhub datasets NAME`), or an ISO date (the end of that day, UTC) or date-time (UTC when no zone)."),
    fmt: str = typer.Option("csv", "--format", help="csv, parquet or json (JSON Lines)."),
    out: Path | None = typer.Option(None, "-o", "--output", help="Output file (default: stdout for csv/json)."),
) -> None:
    """Pull a dataset, filtered and projected with predicate pushdown."""
    from consumers.access import pull_table, write_pull

    result = pull_table(dataset, where, columns.split(",") if columns else None, as_of)
    written = write_pull(result, fmt, out)
    if written is not None:
        typer.echo(f"{result.table.num_rows} rows of {dataset} snapshot {result.snapshot} -> {written} "
                   f"(read {result.bytes_read:,} of {result.dataset_bytes:,} bytes)", err=True)


@app.command("derive")
def derive_cmd(force: bool = typer.Option(False, help="Derive even when inputs did not change.")) -> None:
    """Derive the evidence datasets now (the derive_evidence DAG calls the same function)."""
    from app.console import print_counts
    from consumers.evidence import derive_evidence

    print_counts("derive evidence", derive_evidence(force=force))


@app.command("maintain")
def maintain_cmd(table: list[str] = typer.Option([], "--table", help="Only this table (namespace.table, the `table` "
                                                  "of `ioxhub datasets`); repeat for several. Default: every table."),
                 as_json: bool = JSON) -> None:
    """Compact small files, expire old snapshots, remove orphan files of the Iceberg tables (the maintain_tables
    DAG calls the same function); exit 1 if a table could not be maintained."""
    from app.console import show
    from app.console.ops import print_maintain
    from ioxhub.maintain import maintain

    summary = maintain(only=table)
    show(summary, as_json, print_maintain)
    raise typer.Exit(1 if summary["problems"] else 0)
@app.command("report")
def report_cmd(instrument: str = typer.Argument(..., help="Instrument id, e.g. WCO-FOS-ECOM."),
               out: Path | None = typer.Option(None, "-o", "--output", help="Output .html or .png (default: reports/<id>.html).")) -> None:
    """Write an instrument's impact report: adopters vs non-adopters, adoption dates, DiD and event study."""
    from app.demo import write_report_for

    path = write_report_for(instrument, out or Path("reports") / f"{instrument}.html")
    typer.echo(f"report written to {path}")


# ---------------------------------------------------------------------------------------- lineage, metrics
@app.command("lineage")
def lineage_cmd(dataset: str = typer.Argument(..., help="Dataset name, e.g. impact_did (curated/<name>) or a harmonized/ path."),
                as_json: bool = JSON) -> None:
    """The upstream graph of a dataset down to the partner releases and files (from the lineage events)."""
    from app.console import show
    from app.console.lineage import print_lineage
    from ioxhub.lineage_graph import dataset_graph

    show(dataset_graph(dataset), as_json, print_lineage)


metrics_app = typer.Typer(invoke_without_command=True, help="Prometheus metrics: print the exposition, or serve it.")
app.add_typer(metrics_app, name="metrics")


@metrics_app.callback()
def metrics_print(ctx: typer.Context,
                  live: bool = typer.Option(True, "--live/--no-live", help="Include the gauges computed now (lag, freshness)."),
                  as_json: bool = JSON) -> None:
    """Print the current exposition (the runs' textfiles and, with --live, topic lag and dataset freshness)."""
    if ctx.invoked_subcommand is None:
        from app.console import print_json
        from ioxhub.metrics_exporter import exposition, samples
        if as_json:
            print_json(samples(live=live))
        else:
            typer.echo(exposition(live=live), nl=False)


@metrics_app.command("serve")
def metrics_serve(port: int = typer.Option(9464, "--port", help="HTTP port of /metrics."),
                  addr: str = typer.Option("127.0.0.1", "--addr", help="Address to listen on.")) -> None:
    """Serve /metrics on HTTP until interrupted (Prometheus scrapes it)."""
    import time

    from ioxhub.metrics_exporter import serve_metrics
    serve_metrics(port, addr=addr)
    typer.echo(f"serving metrics on http://{addr}:{port}/metrics (Ctrl-C stops)", err=True)
    while True:
        time.sleep(3600)


# ---------------------------------------------------------------------------------------- demo
@app.command("demo")
def demo_cmd() -> None:
    """The main job: stack up, provision, publish the sample feeds, run the DAGs through Airflow, summarize."""
    from app.console import print_demo
    from app.demo import run_demo

    print_demo(run_demo(progress=lambda text: typer.echo(f"* {text}")))


def main() -> None:
    try:
        result = app(standalone_mode=False)  # click returns the code of a typer.Exit here
    except IoxhubError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        sys.exit(130)
    except Exception as exc:  # click usage errors arrive here in non-standalone mode
        import click
        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
