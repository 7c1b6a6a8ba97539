"""`ioxhub ingest KIND --follow [--derive]`: the follow loop of ioxhub.ingest.run with the process around it.

`run_follow(kind, derive, out)` turns SIGINT/SIGTERM into a clean stop (the batch in hand is finished and
committed, the consumer closed, exit 0; a second signal abandons the batch without committing), prints
each batch through `out`, and with `derive` runs the evidence derivation (the call the derive_evidence
DAG makes) whenever a batch applied something and nothing is waiting. Method: docs/freshness.md.
"""
from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Callable

from consumers.evidence import derive_evidence
from ioxhub.ingest.run import Kind, follow

log = logging.getLogger("ioxhub.follow")


def run_follow(kind: Kind, derive: bool, out: Callable[[str, dict], None]) -> dict:
    """Follow `kind` until SIGINT/SIGTERM; `out(event, data)` gets "waiting", "batch", "derive", "retry"
    and the final "stopped" (the totals, returned too)."""
    stop = threading.Event()

    def on_signal(signum, frame) -> None:
        if stop.is_set():                     # second signal: abandon the batch in hand, commit nothing
            raise KeyboardInterrupt
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    derived = 0

    def caught_up() -> None:
        nonlocal derived
        summary = derive_evidence(run_id=f"follow-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}")
        derived += 1
        out("derive", summary)

    try:
        totals = follow(kind, stop=stop, on_batch=lambda s: out("batch", s),
                        on_caught_up=caught_up if derive else None,
                        on_wait=lambda holder: out("waiting", {"holder": holder}),
                        on_retry=lambda error, pause: out("retry", {"error": error, "pause_seconds": pause}))
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    totals = {"kind": kind, **totals, "derivations": derived}
    out("stopped", totals)
    return totals
