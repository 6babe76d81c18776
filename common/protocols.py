"""Protocol versions: records pair only when the same seed would give the same score.

A pipeline's version goes up whenever a change can give the same seed a different score (initialisation
order, evaluator, data handling); every record stores it (``record["protocol"]``) and the leaderboard pairs
only records of the current version, showing older ones as history. Changes that only change speed keep it.
"""

from __future__ import annotations

from typing import Any

#: pipeline -> current protocol version
PROTOCOL: dict[str, int] = {"graph": 1, "image": 1, "sentence": 1}

#: Version 1 of every pipeline began at commit 72c096d (2026-12-03, the objective registry in all three
#: pipelines). Evidence: of the 132 (column, row, seed) scores the committed records hold twice, the 117 that
#: differ all pair a run from before that commit (graph, 2026-11-23) with one after it (the untrained graph
#: encoder at MUTAG seed 1: 85.12 before, 82.95 after); after it, only the untrained sentence encoder differs,
#: by 0.01-0.02 points between runs of unchanged sentence code (floating-point non-determinism of the SentEval
#: classifiers, not a protocol change). The image loss core was rewritten on 2026-12-03 too, so image runs from
#: before that commit (NT-Xent and HCL at seeds 0-3) are re-run rather than paired across it. Records written before
#: versions were recorded carry no ``protocol``: these are the commits (10-hex prefixes) they name that descend
#: from 72c096d (``git merge-base --is-ancestor``); every other unversioned record is version 0. The set is
#: closed: every record written since stores its version.
LEGACY_VERSION_1 = frozenset({
    "0407776220", "04eeabe1bb", "0d5d9d3e95", "17db3217a9", "22b7ae98de", "266f9bdfd7", "26cd5b27c8",
    "2778d94de2", "28e8c5e017", "344d04749c", "35fe2587e2", "3c60f68453", "3d199e0bdc", "47512d7b8b",
    "4e22723b2d", "57052077a1", "59aa69d032", "606f841e98", "65b00657a4", "6617fefa1a", "6d002faf8d",
    "6d50fd139d", "6d5273aaf1", "6e9575eb7f", "77a0543e2a", "781c0f5d61", "79bb4ef920", "7e9db294c6",
    "7ff1059335", "81f4d687a9", "8badd59eb1", "8e434ed614", "9112802ecb", "91b1f4f4d3", "97896228b6",
    "9c7fac5606", "a39ddd9b13", "a4926f27be", "a5f6ddee71", "a6c1cb74e3", "aad9f3bf1b", "aef0ed64c5",
    "af61604a13", "b44c550d13", "b4baedcfc5", "bcec1f2434", "c1a2da17d5", "c2988cf695", "cc62e859cf",
    "d3e4155c43", "dcaab9e885", "e2a9eea8c9", "e3755b5bdf", "e4da563e41", "e4edc2c6c3", "e6e1bee9e1",
    "e768770bd3", "e9fb066ff7", "ea523a6a0f", "ec712426aa", "ec97d6821b", "ef021000a5", "efc977023f",
    "f986c7ef86"
})


def history(pipeline: str, protocol: int) -> list[str]:
    """What a page adds to the setting of a run of an older version, ``protocol v0 (history)``; nothing for today's."""
    return [] if protocol == PROTOCOL[pipeline] else [f"protocol v{protocol} (history)"]


def protocol_of(record: dict[str, Any]) -> int:
    """The record's protocol version: stored, or for an older record the version of the commit it names."""
    stored = record.get("protocol")
    if isinstance(stored, int) and not isinstance(stored, bool):
        return stored
    return 1 if str(record.get("git_commit", ""))[:10] in LEGACY_VERSION_1 else 0
