"""`ioxhub ingest KIND --follow [--derive]`: the follow loop of ioxhub.ingest.run with the process around it.

`run_follow(kind, derive, out)` turns SIGINT/SIGTERM into a clean stop (the batch in hand is finished and
committed, the consumer closed, exit 0; a second signal abandons the batch without committing), prints
each batch through `out`, and with `derive` runs the evidence derivation (the call the derive_evidence
DAG makes) in a process of its own (niced) whenever a batch applied something and nothing is waiting, so
the ingest goes on meanwhile. Method: docs/freshness.md.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from typing import Callable

from consumers.evidence import derive_evidence
from ioxhub.ingest.quarantine import OUTAGES
from ioxhub.ingest.run import Kind, follow


def run_follow(kind: Kind, derive: bool, out: Callable[[str, dict], None]) -> dict:
    """Follow `kind` until SIGINT/SIGTERM; `out(event, data)` gets "waiting", "batch", "derive", "retry"
    and the final "stopped" (the totals, returned too)."""
    stop = threading.Event()
    lock = threading.Lock()

    def say(event: str, data: dict) -> None:      # from the follow loop and the derivation thread
        with lock:
            out(event, data)

    def on_signal(signum, frame) -> None:
        if stop.is_set():                     # second signal: abandon the batch in hand, commit nothing
            raise KeyboardInterrupt
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    deriver = Deriver(say) if derive else None
    try:
        if deriver:
            deriver.start()
        totals = follow(kind, stop=stop, on_batch=lambda s: say("batch", s),
                        on_caught_up=deriver.request if deriver else None,
                        on_wait=lambda holder: say("waiting", {"holder": holder}),
                        on_retry=lambda error, pause: say("retry", {"error": error, "pause_seconds": pause}))
    finally:
        if deriver:
            deriver.close()                   # lets a derivation in progress finish, starts no other
        for s, handler in previous.items():
            signal.signal(s, handler)
    totals = {"kind": kind, **totals, "derivations": deriver.count if deriver else 0}
    say("stopped", totals)
    return totals


DERIVE_NICE = 10     # the derivation yields the CPU to the ingest (2 cores: freshness of harmonized/ first)


def _derive_worker_init() -> None:
    """The derivation process: lower priority; Ctrl-C in the terminal is the follow process's to handle."""
    os.nice(DERIVE_NICE)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Deriver(threading.Thread):
    """Runs the evidence derivation beside the follow loop, in a process of its own (started once, at a lower
    priority, no GIL shared with the ingest), so new releases are applied meanwhile: once per `request()`,
    requests made during a derivation folded into the next one."""

    def __init__(self, say: Callable[[str, dict], None]):
        super().__init__(name="follow-derive", daemon=True)
        self.say, self.count = say, 0
        self.wanted, self.closing = threading.Event(), threading.Event()
        self.pool = multiprocessing.get_context("spawn").Pool(1, initializer=_derive_worker_init)

    def request(self) -> None:
        self.wanted.set()

    def close(self) -> None:
        self.closing.set()
        self.join()
        self.pool.close()
        self.pool.join()

    def run(self) -> None:
        pause = 1.0
        while not self.closing.is_set():
            if not self.wanted.wait(0.2) or self.closing.is_set():
                continue
            self.wanted.clear()
            try:
                summary = self.pool.apply(derive_evidence,
                                          kwds={"run_id": f"follow-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}"})
            except OUTAGES as exc:            # storage down: try again after a pause
                self.say("retry", {"error": f"derive: {type(exc).__name__}: {exc}", "pause_seconds": pause})
                self.wanted.set()
                self.closing.wait(pause)
                pause = min(30.0, pause * 2)
                continue
            pause = 1.0
            self.count += 1
            self.say("derive", summary)
