"""Deciding one batch of a scan: what a worker process (or, with one job, the scan itself)
does with each batch the reader gives it. A batch is an Arrow record batch (Parquet, CSV)
or a list of records (JSON lines); the result is the batch's output rows, in input order,
as the output format wants them (``dsl.scan.output``), and its tally for the report."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import pyarrow as pa
import pyarrow.compute as pc

from ..evaluate import semantics as S
from ..evaluate import values as V
from ..evaluate.outcome import DecisionError, InputError, format_instant
from ..evaluate.policies import Policies
from .columns import (
    MEMO_LIMIT,
    constant,
    decided_arrays,
    id_texts,
    path_column,
    placed,
    plain_at_texts,
    plain_table,
)
from .convert import batch_listings, column_values
from .lookup import Lookup, lookup_for
from .records import Bad, Lines, is_envelope, open_envelope, undecidable
from .report import Tally, seller_key
from .schema import DECIDE_COLUMN, Row, arrow_schema, rows_to_output

__all__ = ["Job", "decide_batch"]


@attrs.frozen
class Job:
    """What every batch of one scan is decided with (sent to the workers once a batch:
    small, and picklable)."""

    out_format: str
    at: str | None
    """The command line's instant as given, or ``now`` as read once for the scan (UTC);
    None with ``at_field``."""
    at_field: tuple[str, ...] | None
    prior_field: tuple[str, ...] | None
    id_field: tuple[str, ...]
    seller_field: tuple[str, ...]
    csv: bool = False
    """The batches are CSV read as text: every cell is read as ``convert.csv_cell``."""
    envelopes: bool = False
    """The records are JSON: an envelope is read as ``policy eval`` reads it."""

    @property
    def at_name(self) -> str:
        return ".".join(self.at_field or ())


def _record_at(job: Job, listing: Any) -> Any:
    """The record's ``at`` as read from its field (or the command line's), passed to
    ``decide`` as it is: a text goes through the evaluator's memo of parsed instants."""
    if job.at_field is None:
        return job.at
    value = V.read_path(listing, job.at_field) if isinstance(listing, dict) else None
    if value is None:
        raise _no_at(job)
    return value


def _no_at(job: Job) -> InputError:
    """The error of a record whose ``at`` field is missing or null."""
    return InputError(f"{job.at_name}: no instant to decide at (the field is missing or null)", field=job.at_name)


def _record_prior(job: Job, listing: Any) -> Any:
    if job.prior_field is None or not isinstance(listing, dict):
        return 0
    value = V.read_path(listing, job.prior_field)
    return 0 if value is None else value


def _opened(job: Job, record: Any, listing: Any) -> tuple[Any, Any, Any]:
    """The listing, ``at`` and prior a record is decided with (``listing``: its listing,
    ``_listing``): its ``at`` and prior read from the listing's fields (an envelope's
    listing: ``--at-field`` names a field of the listing, as ``--id-field`` does), an
    envelope's own ``at`` and ``prior_violations`` overriding them, as ``policy eval``
    reads it. Raises InputError for a record whose ``at`` field is missing or null."""
    if listing is not record:
        own = record.get("at") is not None
        at = job.at if job.at_field is None or own else _record_at(job, listing)
        return open_envelope(record, at, _record_prior(job, listing))
    return listing, _record_at(job, listing), _record_prior(job, listing)


def _listing(job: Job, record: Any) -> Any:
    return record["listing"] if job.envelopes and is_envelope(record) else record


def _id(job: Job, listing: Any) -> Any:
    return V.read_path(listing, job.id_field) if isinstance(listing, dict) else None


def decide_rows(policies: Policies, job: Job, records: Sequence[Any], tally: Tally, offset: int,
                places: Sequence[int] | None = None) -> list[Row]:
    """The output row of each record (a listing, an envelope with ``job.envelopes``, or
    ``Bad``), counted in ``tally``: the record ``i`` is the record
    ``offset + places[i] + 1`` of the input (``places`` None: ``offset + i + 1``), for the
    report's list of errors. The records that can be decided are decided by one call of
    ``decide_many`` (each decision the one ``decide`` gives; a record that cannot be
    decided gets the message ``decide_record`` would raise)."""
    phash = policies.policy_hash
    shown: list[Any] = []  # each record's listing, for its id and seller
    listings: list[Any] = []
    ats: list[Any] = []
    priors: list[Any] = []
    failed: dict[int, str] = {}
    for i, record in enumerate(records):
        listing = _listing(job, record)
        shown.append(listing)
        if isinstance(record, Bad):  # (its own message, before any field is read)
            failed[i] = record.message
            continue
        try:
            listing, at, prior = _opened(job, record, listing)
        except InputError as e:
            failed[i] = e.message
            continue
        problem = undecidable(listing, at)
        if problem is not None:
            failed[i] = problem
            continue
        listings.append(listing)
        ats.append(at)
        priors.append(prior)
    decided = iter(policies.decide_many(listings, ats, priors))
    rows: list[Row] = []
    formatted = _formatted()
    for i, listing in enumerate(shown):
        message = failed.get(i) if failed else None
        if message is None:
            decision = next(decided)
            if isinstance(decision, DecisionError):
                message = decision.message
            else:
                rows.append((_id(job, listing), decision.effect, decision.rules, decision.overridden,
                             decision.penalty.to_dict() if decision.penalty is not None else None, decision.warnings,
                             None, formatted.get(decision.at) or _remember(formatted, decision.at), phash))
                tally.decision(decision, _seller(job, listing) if decision.effect == "block" else None)
                continue
        rows.append((_id(job, listing), None, None, None, None, None, message, None, phash))
        tally.error(offset + (places[i] if places is not None else i) + 1, message)
    return rows


_FORMATTED: dict[Any, str] = {}
"""The instants decided at, formatted (a catalogue's dates repeat from batch to batch)."""


def _formatted() -> dict[Any, str]:
    """The memo of formatted instants, for one batch: emptied first once it holds
    ``MEMO_LIMIT`` (an entry is set whole, so scans in several threads may share it)."""
    if len(_FORMATTED) >= MEMO_LIMIT:
        _FORMATTED.clear()
    return _FORMATTED


def _remember(formatted: dict[Any, str], at: Any) -> str:
    text = formatted[at] = format_instant(at)
    return text


def _seller(job: Job, listing: Any) -> Any:
    return V.read_path(listing, job.seller_field) if isinstance(listing, dict) else None


def decide_batch(policies: Policies, job: Job, batch: pa.RecordBatch | list[Any] | Lines,
                 offset: int) -> tuple[Any, Tally]:
    """The output of one batch (as ``rows_to_output`` gives it for ``job.out_format``) and
    its tally. In an Arrow batch with the pushdown's column, the rows where it is false are
    plain allows, not decided (only their id and ``at`` are read)."""
    tally = Tally()
    if isinstance(batch, Lines):
        batch = batch.read()
    if isinstance(batch, list):
        return rows_to_output(decide_rows(policies, job, batch, tally, offset), job.out_format), tally
    if job.out_format == "jsonl":
        return rows_to_output(_arrow_rows(policies, job, batch, tally, offset), job.out_format), tally
    return _arrow_batch(policies, job, batch, tally, offset), tally


class _Once:
    """A batch's listings, built when first asked for."""

    def __init__(self, job: Job, data: pa.RecordBatch):
        self.job, self.data = job, data
        self.listings: list[Any] | None = None

    def __call__(self) -> list[Any]:
        if self.listings is None:
            self.listings = batch_listings(self.data, csv=self.job.csv)
        return self.listings


def _arrow_batch(policies: Policies, job: Job, batch: pa.RecordBatch, tally: Tally, offset: int) -> pa.RecordBatch:
    """An Arrow batch's output as an Arrow batch (Parquet, CSV): the records the pushdown
    rules out are never built as listings; their rows are columns of constants but for
    ``id`` and ``at``."""
    names = batch.schema.names
    data = batch.drop_columns([DECIDE_COLUMN]) if DECIDE_COLUMN in names else batch
    listings = _Once(job, data)
    ids = id_texts(data, job.id_field, csv=job.csv, listings=listings)
    decide, plain_ats, settling = _to_decide(policies, job, batch, data, listings)
    phash, schema = policies.policy_hash, arrow_schema(job.out_format)
    if decide is None:
        everything = decide_columns(policies, job, data, listings(), tally, offset)
        return pa.RecordBatch.from_arrays([ids, *decided_arrays(job.out_format, everything, phash)], schema=schema)
    places = pc.indices_nonzero(decide)
    subset, numbers = data.take(places), places.to_pylist()
    chosen = ([listings()[i] for i in numbers] if listings.listings is not None
              else batch_listings(subset, csv=job.csv))
    decided = decided_arrays(job.out_format, decide_columns(policies, job, subset, chosen, tally, offset, numbers),
                             phash)
    n, rest = len(batch), pc.invert(decide)
    if settling is None:
        tally.plain_allow(n - len(chosen))
        table, rows = plain_table(job.out_format, phash), constant(0, pa.int32(), n)
    else:
        settled, lookup = settling
        table, rows = _settled(job, data, listings, settled, rest, lookup, phash, tally)
    columns = placed(decide, rows, table[:7], decided[:7])
    columns[6] = pc.if_else(decide, columns[6], plain_ats)  # the plain rows' ``at``: one for all, or each record's
    return pa.RecordBatch.from_arrays([ids, *columns, constant(phash, pa.string(), n)], schema=schema)


def _settled(job: Job, data: pa.RecordBatch, listings: _Once, settled: pa.Array, rest: pa.Array, lookup: Lookup,
             phash: str, tally: Tally) -> tuple[list[pa.Array], pa.Array]:
    """The output columns (after ``id``) of the plain allow (row 0) and of each keyed
    rule's outcome alone (row k + 1: ``semantics.combine`` of that one rule, as the
    evaluator gives it, no warning), and each record's row in them: where the lookup
    settles it, its rule's; else the plain allow's. The records not decided in Python
    (``rest``) are tallied here."""
    table, outcomes = _outcome_table(lookup, job.out_format, phash)
    rows = pc.fill_null(pc.add(settled, pa.scalar(1, pa.int32())), 0)
    counts = dict(zip(*(c.to_pylist() for c in pc.value_counts(rows.filter(rest)).flatten()), strict=True))
    tally.plain_allow(counts.pop(0, 0))
    for i, c in counts.items():
        o = outcomes[i]
        tally.repeated(o.effect, o.rules, o.penalty, c)
    blocking = [i for i in counts if outcomes[i].effect == "block"]
    tally.blocked_sellers.update(_settled_sellers(job, data, listings, rest, rows, blocking))
    return table, rows


def _outcome_table(lookup: Lookup, out_format: str, phash: str) -> tuple[list[pa.Array], list[Any]]:
    """The output columns of the plain allow (row 0) and of each keyed rule's outcome alone
    (row k + 1; a rule that does not settle has none: an allow in its row, never taken),
    made once per scan; and those outcomes."""
    found = lookup.tables.get((out_format, phash))
    if found is None:
        plain = S.Outcome("allow", (), {}, (), None, (), ())
        outcomes = [plain, *(k.outcome or plain for k in lookup.keyed)]
        table = decided_arrays(out_format, [
            [o.effect for o in outcomes], [o.rules for o in outcomes], [o.overridden for o in outcomes],
            [o.penalty.to_dict() if o.penalty is not None else None for o in outcomes],
            [()] * len(outcomes), [None] * len(outcomes), [None] * len(outcomes)], phash)
        found = lookup.tables[(out_format, phash)] = (table, outcomes)
    return found


def _settled_sellers(job: Job, data: pa.RecordBatch, listings: Callable[[], Sequence[Any]], rest: pa.Array,
                     rows: pa.Array, blocking: list[int]) -> Counter[str]:
    """The settled records that are blocked, by seller (``rows``: each record's row in
    the outcome table, ``blocking`` those of blocking outcomes)."""
    if not blocking:
        return Counter()
    blocked = pc.and_(rest, pc.is_in(rows, value_set=pa.array(blocking, pa.int32())))
    return _sellers(job, data, listings, pc.indices_nonzero(blocked))


def _sellers(job: Job, data: pa.RecordBatch, listings: Callable[[], Sequence[Any]], places: pa.Array) -> Counter[str]:
    """The records of ``data`` at ``places`` by seller (``seller_key``, for the report):
    counted by Arrow per distinct value where one column holds the seller (never for
    envelopes), else read from the listings."""
    column = path_column(data, job.seller_field, csv=job.csv)
    if column is None or job.envelopes:
        chosen = listings()
        return Counter(seller_key(_seller(job, _listing(job, chosen[i]))) for i in places.to_pylist())
    taken = column.take(places)
    try:
        counted = pc.value_counts(taken)  # (nulls and NaN counted as one value each)
    except pa.ArrowNotImplementedError:  # a struct or list seller: value by value
        return Counter(seller_key(v) for v in column_values(taken, csv=job.csv))
    found: Counter[str] = Counter()
    values, counts = counted.field("values"), counted.field("counts").to_pylist()
    for value, count in zip(column_values(values, csv=job.csv), counts, strict=True):
        found[seller_key(value)] += count
    return found


def _field_values(job: Job, data: pa.RecordBatch, path: tuple[str, ...], listings: Sequence[Any]) -> list[Any]:
    """The value at ``path`` of each listing (None when absent), read from its column
    where one column holds it."""
    column = path_column(data, path, csv=job.csv)
    if column is None:
        return [V.read_path(x, path) if isinstance(x, dict) else None for x in listings]
    return column_values(column, csv=job.csv)


def decide_columns(policies: Policies, job: Job, data: pa.RecordBatch, listings: Sequence[Any], tally: Tally,
                   offset: int, places: Sequence[int] | None = None) -> list[list[Any]]:
    """``decide_rows`` for the listings of an Arrow batch (``data``), as the columns
    effect, rules, overridden, penalty, warnings, error and at: each record's ``at`` and
    prior are read from their columns, and its id is not read (the caller reads it from
    its column). The listings are decided by ``decide_many`` (one call for the batch:
    each decision is the one ``decide`` gives), and tallied a column at a time."""
    n = len(listings)
    if job.at_field is None:
        ats: Any = job.at
    else:
        ats = _field_values(job, data, job.at_field, listings)
    priors: Any = 0
    if job.prior_field is not None:
        priors = [0 if p is None else p for p in _field_values(job, data, job.prior_field, listings)]
    results: list[Any] = policies.decide_many(listings, ats, priors)
    errors: dict[int, str] = {i: r.message for i, r in enumerate(results) if type(r) is DecisionError}
    if job.at_field is not None and None in ats:  # decide_many reads a missing ``at`` as now: the scan does not
        missing = _no_at(job).message
        errors.update((i, missing) for i, a in enumerate(ats) if a is None)
    for i in errors:
        results[i] = _ERROR
    formatted = _formatted()
    effect = [d.effect for d in results]
    rules = [d.rules for d in results]
    penalty = [d.penalty.to_dict() if d.penalty is not None else None for d in results]
    at_out = [None if d.at is None else formatted.get(d.at) or _remember(formatted, d.at) for d in results]
    out = [effect, rules, [d.overridden for d in results], penalty, [d.warnings for d in results],
           [errors.get(i) for i in range(n)] if errors else [None] * n, at_out]
    for i in sorted(errors):
        tally.error(offset + (places[i] if places is not None else i) + 1, errors[i])
    tally.decided(effect, rules, [d.penalty for d in results if d.penalty is not None],
                  _blocked_sellers(job, data, listings, effect))
    return out


class _Error:
    """The columns of a record in error: all null (its message goes in ``error``)."""

    effect = rules = overridden = penalty = warnings = at = None


_ERROR = _Error()


def _blocked_sellers(job: Job, data: pa.RecordBatch, listings: Sequence[Any], effect: list[Any]) -> Counter[str]:
    """The blocked records by seller (for the report)."""
    blocked = [i for i, e in enumerate(effect) if e == "block"]
    if not blocked:
        return Counter()
    return _sellers(job, data, lambda: listings, pa.array(blocked, pa.int64()))


def _pushdown_mask(policies: Policies, job: Job, batch: pa.RecordBatch,
                   data: pa.RecordBatch) -> tuple[pa.Array | None, pa.Array | None, Lookup | None]:
    """Where the pushdown keeps the batch's records (None: it does not narrow: no SQL
    column, or one that keeps every record, when the lookup has nothing to add): its SQL
    column OR the category lookup (``dsl.scan.lookup``), which answers for the rules the
    SQL leaves out; and the records the lookup settles (the keyed rule that alone applies
    to each, null elsewhere; None: none is), only where the SQL column is FALSE (no other
    rule, no warning and no error)."""
    names = batch.schema.names
    if DECIDE_COLUMN not in names:
        return None, None, None
    decide = batch.column(names.index(DECIDE_COLUMN))
    if pc.all(decide).as_py():  # (never null)
        return None, None, None
    lookup = lookup_for(policies.policy_set, policies.policy_hash, job.at, job.at_field, job.prior_field is None)
    if lookup is None:
        return decide, None, None
    keep, settled = lookup.classify(data, csv=job.csv)
    if settled is not None and (job.envelopes or path_column(data, job.seller_field, csv=job.csv) is None):
        keep, settled = pc.or_(keep, pc.is_valid(settled)), None  # the seller is read from the listings
    if settled is not None:
        settled = pc.if_else(decide, pa.scalar(None, pa.int32()), settled)
    return pc.or_(decide, keep), settled, lookup


def _to_decide(policies: Policies, job: Job, batch: pa.RecordBatch, data: pa.RecordBatch,
               listings: _Once) -> tuple[pa.Array | None, pa.Array | str, Any]:
    """Which records of the batch are decided (None: all of them), the ``at`` a plain
    allow reports (one text for all, or one per record), and the records settled (with
    their lookup; None: none is). A record the pushdown rules out whose ``at`` cannot be
    read is decided, to get its error."""
    decide, settled, lookup = _pushdown_mask(policies, job, batch, data)
    if decide is None:
        return None, "", None
    ats = _plain_ats(job, data, listings)
    if isinstance(ats, pa.Array):
        unread = pc.is_null(ats)
        decide = pc.or_(decide, unread)
        if settled is not None:
            settled = pc.if_else(unread, pa.scalar(None, pa.int32()), settled)
    if pc.all(decide).as_py():
        return None, ats, None
    if settled is not None and settled.null_count == len(settled):
        settled = None
    return decide, ats, (settled, lookup) if settled is not None else None


def _plain_ats(job: Job, data: pa.RecordBatch, listings: Callable[[], Sequence[Any]]) -> pa.Array | str:
    """The ``at`` a plain allow reports: one text for all (``--at``), or each record's
    (``columns.plain_at_texts``: null where it cannot be read, and the record is decided,
    to get its error)."""
    if job.at_field is None:
        return format_instant(V.parse_at(job.at).reported)
    return plain_at_texts(data, job.at_field, csv=job.csv, listings=listings)


def _arrow_rows(policies: Policies, job: Job, batch: pa.RecordBatch, tally: Tally, offset: int) -> list[Row]:
    if DECIDE_COLUMN not in batch.schema.names:
        return decide_rows(policies, job, batch_listings(batch, csv=job.csv), tally, offset)
    data = batch.drop_columns([DECIDE_COLUMN])
    keep, settled, _ = _pushdown_mask(policies, job, batch, data)
    if keep is None:
        return decide_rows(policies, job, batch_listings(data, csv=job.csv), tally, offset)
    mask = (pc.or_(keep, pc.is_valid(settled)) if settled is not None else keep).to_pylist()
    if all(mask):
        return decide_rows(policies, job, batch_listings(data, csv=job.csv), tally, offset)
    thin = _thin_listings(job, data)
    ats = _plain_ats(job, data, lambda: thin)
    plain = ats.to_pylist() if isinstance(ats, pa.Array) else [ats] * len(mask)
    allow_at = [None if m else a for m, a in zip(mask, plain, strict=True)]
    decide = [i for i, a in enumerate(allow_at) if a is None]
    subset = batch_listings(data.take(pa.array(decide, pa.int64())), csv=job.csv) if decide else []
    decided = iter(decide_rows(policies, job, subset, tally, offset, decide))
    phash = policies.policy_hash
    rows: list[Row] = []
    for i, a in enumerate(allow_at):
        if a is None:
            rows.append(next(decided))
        else:
            rows.append((_id(job, _listing(job, thin[i])), "allow", (), (), None, (), None, a, phash))
    tally.plain_allow(len(rows) - len(decide))
    return rows


def _thin_listings(job: Job, data: pa.RecordBatch) -> list[Any]:
    """The listings with only the columns that hold the id and the ``at`` field."""
    heads = {job.id_field[0], *(job.at_field[:1] if job.at_field else ())}
    keep = [n for n in data.schema.names if n.split(".")[0] in heads]
    return batch_listings(data.select(keep), csv=job.csv)

