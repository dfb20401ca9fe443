"""`policy diff --catalogue`: a real catalogue decided by both versions, through `policy
scan`'s reader (Parquet, CSV, JSON lines: ``dsl.scan.source``, ``dsl.scan.convert``) and
its way of deciding a record (``dsl.scan.records``: envelopes, input errors), counted by
kind of change and by rule changed, with a few example ids."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import attrs

from ..evaluate import values as V
from ..scan.convert import batch_listings
from ..scan.csv_rows import csv_source
from ..scan.records import Bad, Lines, open_envelope
from ..scan.schema import id_text
from ..scan.source import CsvUnread, Source, expand_inputs, open_source, partition_note
from .core import Replay
from .kinds import KINDS, shown
from .report import code

__all__ = ["CatalogueCounts", "EXAMPLES", "count_catalogue"]

EXAMPLES = 3
"""Example ids kept per kind and per rule."""


@attrs.define
class Tally:
    count: int = 0
    examples: list[str] = attrs.Factory(list)

    def add(self, ident: str) -> None:
        self.count += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(ident)

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "examples": list(self.examples)}


@attrs.define
class CatalogueCounts:
    """What deciding the catalogue with both versions found. ``errors`` counts the
    records that one version or both could not decide (an input error); those whose
    decision differs are counted by kind and by rule (a rule changed that applies, in
    either version, to the listing)."""

    files: tuple[str, ...]
    at: str
    records: int = 0
    changed: int = 0
    errors: int = 0
    by_kind: dict[str, Tally] = attrs.Factory(dict)
    by_rule: dict[str, Tally] = attrs.Factory(dict)
    notes: tuple[str, ...] = ()
    """What the reader says about the files (``source.partition_note``), as `policy scan` warns."""

    def to_dict(self) -> dict[str, Any]:
        return {"files": list(self.files), "at": self.at, "records": self.records, "changed": self.changed,
                "errors": self.errors,
                "by_kind": {k: self.by_kind[k].to_dict() for k in KINDS if k in self.by_kind},
                "by_rule": {q: t.to_dict() for q, t in sorted(self.by_rule.items())},
                "notes": list(self.notes)}

    def text_lines(self) -> list[str]:
        lines = [f"catalogue: {self.records:,} records at {self.at}: {self.changed:,} decisions change"
                 + (f", {self.errors:,} records not decided (input errors)" if self.errors else "")]
        lines += [f"  warning: {note}" for note in self.notes]
        for k in KINDS:
            if k in self.by_kind:
                t = self.by_kind[k]
                lines.append(f"  {shown(k):<24} {t.count:>8,}   e.g. {', '.join(t.examples)}")
        for q, t in sorted(self.by_rule.items()):
            lines.append(f"  rule {q:<19} {t.count:>8,}   e.g. {', '.join(t.examples)}")
        return lines

    def markdown_lines(self) -> list[str]:
        lines = [f"**Catalogue** ({self.records:,} records at {self.at}): {self.changed:,} decisions change"
                 + (f", {self.errors:,} records not decided" if self.errors else "") + "."]
        lines += [f"> warning: {note}" for note in self.notes]
        if self.by_kind or self.by_rule:
            lines += ["", "| change or rule | listings | examples |", "|---|---|---|"]
            for k in KINDS:
                if k in self.by_kind:
                    lines.append(f"| {shown(k)} | {self.by_kind[k].count:,} | {_ids(self.by_kind[k].examples)} |")
            for q, t in sorted(self.by_rule.items()):
                lines.append(f"| {code(q)} | {t.count:,} | {_ids(t.examples)} |")
        return lines


def _ids(examples: list[str]) -> str:
    return ", ".join(code(e) for e in examples)


BATCH = 8192
"""Records read at a time."""


def _records(source: Source) -> Iterator[Any]:
    """The catalogue's records, in input order (Arrow batches become listings)."""
    for batch in source.batches:
        if isinstance(batch, Lines):
            yield from batch.read()
        elif isinstance(batch, list):
            yield from batch
        else:
            yield from batch_listings(batch, csv=source.fmt == "csv")


def _ident(listing: Any, id_field: tuple[str, ...], number: int) -> str:
    """A record's id as `policy scan` writes it in Parquet and CSV (text as it is, another
    value as its JSON: ``schema.id_text``); ``#N`` for a record without one."""
    return id_text(V.read_path(listing, id_field) if isinstance(listing, dict) else None) or f"#{number}"


def count_catalogue(replay: Replay, files: Sequence[str], changed_rules: Sequence[str], *, at: str,
                    id_field: tuple[str, ...] = ("id",)) -> CatalogueCounts:
    """Decide every record of ``files`` with both versions at ``at``, read as `policy
    scan` reads them (the scan's reader; a JSON lines envelope's own ``at`` and
    ``prior_violations`` win, as in `policy eval`; a CSV file DuckDB stops on is read
    again, each bad row a record in error: ``csv_rows``). Raises ``UsageError`` for an
    input that cannot be read."""
    note = partition_note(expand_inputs(files, "--catalogue"), "--catalogue")
    counts = CatalogueCounts(tuple(files), at, notes=(note,) if note is not None else ())
    try:
        source = open_source(list(files), batch_size=BATCH, at_field=None, predicate=None, option="--catalogue")
        _count(counts, source, replay, changed_rules, at, id_field)
    except CsvUnread as e:  # DuckDB stopped on a row: counted again from the start, as the scan reads again
        counts = CatalogueCounts(tuple(files), at, notes=counts.notes)
        source = csv_source(e.files, BATCH, "--catalogue")
        try:
            _count(counts, source, replay, changed_rules, at, id_field)
        finally:
            source.batches.close()
    return counts


def _count(counts: CatalogueCounts, source: Source, replay: Replay, changed_rules: Sequence[str], at: str,
           id_field: tuple[str, ...]) -> None:
    watched = set(changed_rules)
    envelopes = source.fmt == "jsonl"  # (as the scan opens them: ``Job.envelopes``)
    for number, record in enumerate(_records(source), start=1):
        counts.records += 1
        if isinstance(record, Bad):
            counts.errors += 1
            continue
        listing, own_at, prior = open_envelope(record, at, 0) if envelopes else (record, at, 0)
        pair = replay.decide(listing, own_at, prior)
        if pair is None:  # an input error in either version
            counts.errors += 1
            continue
        kind = replay.kind(pair)
        if kind is None:
            continue
        counts.changed += 1
        ident = _ident(listing, id_field, number)
        counts.by_kind.setdefault(kind, Tally()).add(ident)
        applying = {q for d in pair for q in (*d.rules, *d.overridden)} & watched
        for q in sorted(applying):
            counts.by_rule.setdefault(q, Tally()).add(ident)
