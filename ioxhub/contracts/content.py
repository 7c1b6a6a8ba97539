"""Content checks of decoded events: `check_event(decoded)` runs the check of the event's contract.

The checks themselves live with their contracts (`dataset_chunk.check_chunk`,
`release_manifest.check_manifest`, `policy_update.check_policy`) and raise `codec.ContentError`;
events of other types pass. What is checked and why: docs/reliability.md.
"""
from __future__ import annotations

from ioxhub.contracts import codec, dataset_chunk, policy_update, release_manifest

_CHECKS = {
    dataset_chunk.NAME: dataset_chunk.check_chunk,
    release_manifest.NAME: release_manifest.check_manifest,
    policy_update.NAME: policy_update.check_policy,
}


def check_event(decoded: codec.Decoded) -> None:
    """Raise codec.ContentError when a decoded event's content is unusable (events of other types pass)."""
    check = _CHECKS.get(decoded.name)
    if check is not None:
        check(decoded.record)
