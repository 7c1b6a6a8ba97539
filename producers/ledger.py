"""The producer's record of each release it publishes: `ReleaseLedger(settings, org, dataset_id, release_id)`.

`<data_dir>/producer/releases/<ORG>/<DATASET>/<RELEASE>.json` keeps the time of the first attempt
(`produced_at`, so a retry sends byte-identical chunks) and when the release was completed.
"""
from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

from producers.summary import PublishError
from ioxhub.settings import Settings


class ReleaseLedger:
    """The first-attempt time and the completion time of one release."""

    def __init__(self, settings: Settings, org: str, dataset_id: str, release_id: str):
        self.path = Path(settings.data_dir) / "producer" / "releases" / org / dataset_id / f"{release_id}.json"
        self.state: dict[str, Any] = {}
        try:
            self.state = json.loads(self.path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            self.state = {}

    def produced_at(self) -> int:
        """Milliseconds since the epoch of the first attempt (recorded now if this is the first)."""
        if not isinstance(self.state.get("produced_at"), int):
            self.state = {"produced_at": int(time.time() * 1000)}
            self._save()
        return self.state["produced_at"]

    def completed(self) -> str | None:
        """When an earlier attempt completed the release (ISO 8601), else None."""
        return self.state.get("completed_at")

    def complete(self) -> None:
        self.state["completed_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        self._save()

    def _save(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.state))
            tmp.replace(self.path)
        except OSError as exc:
            raise PublishError(f"cannot record the release state in {self.path}: {exc}") from None
