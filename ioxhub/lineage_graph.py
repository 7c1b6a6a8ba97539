"""The upstream graph of a dataset, from the hub's OpenLineage run events (the file transport's JSON lines).

`upstream(events, dataset)` returns a tree: the dataset <- the run that wrote it <- that run's inputs <- ...
down to the partner files, following release ids where the events carry them (a curated snapshot <- the
harmonized datasets at their snapshot <- the ingest runs that applied their releases <- the publishes of
those releases <- their files). `dataset_graph(dataset, settings)` reads the events file first. Walk rules:
docs/lineage-and-metrics.md.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from ioxhub import lineage
from ioxhub.errors import IoxhubError
from ioxhub.settings import Settings, get_settings

DatasetKey = tuple[str, str]


class LineageNotFound(IoxhubError):
    """No lineage event names the dataset asked for."""


def _releases(facets: dict) -> set[str]:
    facet = (facets or {}).get(lineage.RELEASES_FACET) or {}
    return {r["releaseId"] for r in facet.get("releases", []) if r.get("releaseId")}


def _key(ds: dict) -> DatasetKey:
    return ds["namespace"], ds["name"]


class Index:
    """The COMPLETE events of a list of run events, by the datasets they wrote."""

    def __init__(self, events: list[dict]):
        self.writers: dict[DatasetKey, list[tuple[dict, dict]]] = defaultdict(list)
        for event in events:
            if event.get("eventType") != "COMPLETE":
                continue
            for out in event.get("outputs") or []:
                self.writers[_key(out)].append((event, out))
        for writers in self.writers.values():
            writers.sort(key=lambda w: w[0].get("eventTime", ""))

    def resolve(self, dataset: str) -> DatasetKey:
        """The dataset a user names: an exact name, `curated/<name>`, or a unique name ending in `/<name>`."""
        names = {}
        for key in self.writers:
            names.setdefault(key[1], key)
        for candidate in (dataset, f"curated/{dataset}"):
            if candidate in names:
                return names[candidate]
        ends = [k for n, k in names.items() if n.endswith("/" + dataset)]
        if len(ends) == 1:
            return ends[0]
        if ends:
            raise LineageNotFound(f"{dataset!r} names several datasets: {', '.join(sorted(k[1] for k in ends))}")
        raise LineageNotFound(f"no lineage event names a dataset {dataset!r} (is the lineage transport `file`, "
                              "and has a run written it?)")


def upstream(events: list[dict], dataset: str) -> dict:
    """The upstream tree of `dataset` (see the module docstring); plain dicts, ready for JSON."""
    index = Index(events)
    return _dataset_node(index, index.resolve(dataset), None, {}, set(), latest_only=True)


def _dataset_node(index: Index, key: DatasetKey, wanted: set[str] | None, facets: dict, seen: set,
                  latest_only: bool = False) -> dict:
    node: dict[str, Any] = {"namespace": key[0], "name": key[1]}
    version = (facets.get("version") or {}).get("datasetVersion")
    if version is not None:
        node["version"] = version
    if wanted:
        node["releases"] = sorted(wanted)
    writers = index.writers.get(key, [])
    if wanted is not None:
        writers = [(e, o) for e, o in writers if _releases(o.get("facets")) & wanted]
    elif latest_only and writers:
        writers = writers[-1:]
        version = ((writers[0][1].get("facets") or {}).get("version") or {}).get("datasetVersion")
        if version is not None:
            node["version"] = version
    if version is not None and wanted is None and writers:   # a versioned input: the run that wrote that version
        same = [(e, o) for e, o in writers if (o.get("facets", {}).get("version") or {}).get("datasetVersion") == version]
        writers = same[-1:] or writers
    node["written_by"] = [_run_node(index, event, out, wanted, seen) for event, out in writers]
    return node


def _run_node(index: Index, event: dict, out: dict, wanted: set[str] | None, seen: set) -> dict:
    run_id = event["run"]["runId"]
    node: dict[str, Any] = {"job": event["job"]["name"], "namespace": event["job"]["namespace"], "run_id": run_id,
                            "time": event.get("eventTime")}
    parent = (event["run"].get("facets") or {}).get("parent")
    if parent:
        node["parent"] = {"job": parent["job"]["name"], "namespace": parent["job"]["namespace"],
                          "run_id": parent["run"]["runId"]}
    facets = out.get("facets") or {}
    wrote = _releases(facets)
    if wrote:
        node["releases"] = sorted(wrote & wanted if wanted else wrote)
    stats = (out.get("outputFacets") or {}).get("outputStatistics") or {}
    if "rowCount" in stats:
        node["rows"] = stats["rowCount"]
    refused = facets.get(lineage.REFUSED_FACET)
    if refused and refused.get("total"):
        node["refused"] = {"unit": refused["unit"], "by_reason": refused["byReason"]}
    follow = (wrote & wanted if wanted else wrote) or None
    seen_key = (run_id, out["name"], frozenset(follow or ()))   # one run may write several datasets
    if seen_key in seen:
        node["shown_above"] = True
        return node
    seen.add(seen_key)
    inputs = []
    for ds in event.get("inputs") or []:
        own = _releases(ds.get("facets"))
        child = _dataset_node(index, _key(ds), own or follow, ds.get("facets") or {}, seen)
        # a topic no recorded run wrote (or none of the followed releases: another org's topic) is left out
        if not child["written_by"] and ds["namespace"].startswith("kafka://"):
            continue
        inputs.append(child)
    node["inputs"] = inputs
    return node


def sources(tree: dict) -> tuple[set[str], set[str]]:
    """The partner files (file:// paths) and the release ids a tree reaches."""
    files: set[str] = set()
    releases: set[str] = set()

    def walk(ds: dict) -> None:
        if ds["namespace"].startswith("file://"):
            files.add(ds["name"])
        for run in ds.get("written_by", []):
            releases.update(run.get("releases", []))
            for child in run.get("inputs", []):
                walk(child)
    walk(tree)
    return files, releases


def dataset_graph(dataset: str, settings: Settings | None = None) -> dict:
    """The upstream tree of `dataset` from the events of the file transport."""
    settings = settings or get_settings()
    path = lineage.events_file(settings)
    events = lineage.read_events(path)
    if not events:
        raise LineageNotFound(f"no lineage events in {path} (IOXHUB_LINEAGE_TRANSPORT is {settings.lineage_transport!r}; "
                              "the graph is read from the file transport)")
    tree = upstream(events, dataset)
    tree["events_file"] = str(path)
    return tree
