"""The one place where protobuf messages become domain values and back.

Domain code (privacy/, the node's engine, the coordinator's pooling) never sees
protobuf; servicers and clients call these functions at the edge. Parsing a message
from the network raises `WireError(field, message)` naming the offending field (a dotted
path such as ``query.filters[1].date_range.end``), which the node answers with
INVALID_ARGUMENT.

Signing note: the analyst signs `QuerySpec.canonical_bytes()` of the query *as the node
will parse it*. `normalize_spec` gives exactly that (for instance an in-set value True
travels as "true" and comes back as True), so a client signs `normalize_spec(spec)`.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from kernel.signing import SignedRequest
from npcs.v1 import node_pb2 as pb
from privacy.budget import format_rho
from privacy.ledger import LedgerEntry, Receipt
from privacy.query import (
    DateRangeFilter,
    Filter,
    GroupBy,
    GroupByColumn,
    GroupByTime,
    InSetFilter,
    NumericRangeFilter,
    PrivacyLoss,
    QuerySpec,
    Statistic,
    TimeBucket,
)
from privacy.release import Release
from privacy.schema import Schema
from privacy.tlog import Checkpoint, leaf_hash
from privacy.tlog import SignedCheckpoint as DomainSignedCheckpoint

BUDGET_METADATA_KEY = "npcs-budget-bin"
"""Trailing metadata carrying a serialised `BudgetExhausted` on RESOURCE_EXHAUSTED."""
FIELD_METADATA_KEY = "npcs-field-bin"
"""Trailing metadata carrying a serialised `FieldViolation` on INVALID_ARGUMENT."""

DEFAULT_FISCAL_YEAR_START_MONTH = 10
MAX_RHO_TEXT_CHARS = 64
# Decimal accepts "1e999999999"; anything outside this exponent range is not a sane rho.
_RHO_EXPONENT_RANGE = range(-30, 16)
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TRUE, _FALSE = "true", "false"


class WireError(ValueError):
    """A message that cannot become a domain value; `field` is a dotted path into it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# ---------------------------------------------------------------------------------
# Enums

_STATISTIC_TO_PROTO: dict[Statistic, int] = {
    Statistic.COUNT: pb.STATISTIC_COUNT,
    Statistic.SUM: pb.STATISTIC_SUM,
    Statistic.MEAN: pb.STATISTIC_MEAN,
    Statistic.QUANTILES: pb.STATISTIC_QUANTILES,
    Statistic.HISTOGRAM: pb.STATISTIC_HISTOGRAM,
}
_STATISTIC_FROM_PROTO = {number: statistic for statistic, number in _STATISTIC_TO_PROTO.items()}

_BUCKET_TO_PROTO: dict[TimeBucket, int] = {
    TimeBucket.YEAR: pb.TIME_BUCKET_YEAR,
    TimeBucket.FISCAL_YEAR: pb.TIME_BUCKET_FISCAL_YEAR,
    TimeBucket.QUARTER: pb.TIME_BUCKET_QUARTER,
    TimeBucket.MONTH: pb.TIME_BUCKET_MONTH,
}
_BUCKET_FROM_PROTO = {number: bucket for bucket, number in _BUCKET_TO_PROTO.items()}


# ---------------------------------------------------------------------------------
# Queries: domain -> proto


def query_to_proto(spec: QuerySpec) -> pb.Query:
    message = pb.Query(
        query_id=str(spec.query_id),
        dataset=spec.dataset,
        statistic=_STATISTIC_TO_PROTO[spec.statistic],  # type: ignore[arg-type]
        quantiles=list(spec.quantiles),
        bins=list(spec.bins),
        group_by=[_group_by_to_proto(group) for group in spec.group_by],
        filters=[_filter_to_proto(item) for item in spec.filters],
        purpose=spec.purpose,
    )
    if spec.column is not None:
        message.column = spec.column
    if spec.privacy.rho is not None:
        message.rho = str(spec.privacy.rho)
    elif spec.privacy.accuracy is not None:
        message.accuracy = spec.privacy.accuracy
    return message


def _group_by_to_proto(group: GroupBy) -> pb.GroupBy:
    if isinstance(group, GroupByColumn):
        return pb.GroupBy(column=pb.GroupByColumn(column=group.column))
    return pb.GroupBy(
        time=pb.GroupByTime(
            column=group.column,
            bucket=_BUCKET_TO_PROTO[group.bucket],  # type: ignore[arg-type]
            fiscal_year_start_month=group.fiscal_year_start_month,
        )
    )


def _filter_to_proto(item: Filter) -> pb.Filter:
    if isinstance(item, InSetFilter):
        values = [_in_set_value_to_text(value) for value in item.values]
        return pb.Filter(in_set=pb.InSetFilter(column=item.column, values=values))
    if isinstance(item, DateRangeFilter):
        return pb.Filter(
            date_range=pb.DateRangeFilter(
                column=item.column, start=item.start.isoformat(), end=item.end.isoformat()
            )
        )
    numeric = pb.NumericRangeFilter(column=item.column)
    if item.low is not None:
        numeric.low = item.low
    if item.high is not None:
        numeric.high = item.high
    return pb.Filter(numeric_range=numeric)


def _in_set_value_to_text(value: str | bool) -> str:
    if isinstance(value, bool):
        return _TRUE if value else _FALSE
    return value


# ---------------------------------------------------------------------------------
# Queries: proto -> domain


def query_from_proto(message: pb.Query, *, path: str = "query") -> QuerySpec:
    """Parse a Query message; WireError names the first field that is wrong."""
    query_id = _parse_uuid(message.query_id, f"{path}.query_id")
    statistic = _STATISTIC_FROM_PROTO.get(message.statistic)
    if statistic is None:
        raise WireError(
            f"{path}.statistic",
            f"unknown statistic {message.statistic}: use one of "
            f"{', '.join(s.value for s in Statistic)}",
        )
    column = message.column if message.HasField("column") else None
    quantiles = _finite_doubles(message.quantiles, f"{path}.quantiles")
    bins = _finite_doubles(message.bins, f"{path}.bins")
    group_by = tuple(
        _group_by_from_proto(group, f"{path}.group_by[{index}]")
        for index, group in enumerate(message.group_by)
    )
    filters = tuple(
        _filter_from_proto(item, f"{path}.filters[{index}]")
        for index, item in enumerate(message.filters)
    )
    privacy = _privacy_from_proto(message, path)
    try:
        return QuerySpec(
            query_id=query_id,
            dataset=message.dataset,
            statistic=statistic,
            column=column,
            quantiles=quantiles,
            bins=bins,
            group_by=group_by,
            filters=filters,
            privacy=privacy,
            purpose=message.purpose,
        )
    except ValidationError as exc:
        raise _wire_error_from_validation(exc, path) from exc


def normalize_spec(spec: QuerySpec) -> QuerySpec:
    """The spec exactly as a node parses it off the wire: sign *this* one's bytes."""
    return query_from_proto(query_to_proto(spec))


def _parse_uuid(text: str, path: str) -> UUID:
    try:
        return UUID(text)
    except ValueError as exc:
        raise WireError(path, f"{text[:64]!r} is not a UUID: choose a fresh uuid4") from exc


def _finite_doubles(values: Iterable[float], path: str) -> tuple[float, ...]:
    result = tuple(values)
    for index, value in enumerate(result):
        if not math.isfinite(value):
            raise WireError(f"{path}[{index}]", f"must be a finite number, got {value}")
    return result


def _group_by_from_proto(message: pb.GroupBy, path: str) -> GroupBy:
    kind = message.WhichOneof("kind")
    if kind == "column":
        return GroupByColumn(column=message.column.column)
    if kind == "time":
        time = message.time
        bucket = _BUCKET_FROM_PROTO.get(time.bucket)
        if bucket is None:
            raise WireError(
                f"{path}.time.bucket",
                f"unknown time bucket {time.bucket}: use one of "
                f"{', '.join(b.value for b in TimeBucket)}",
            )
        month = (
            time.fiscal_year_start_month
            if time.HasField("fiscal_year_start_month")
            else DEFAULT_FISCAL_YEAR_START_MONTH
        )
        if not 1 <= month <= 12:
            raise WireError(
                f"{path}.time.fiscal_year_start_month", f"must be a month 1-12, got {month}"
            )
        return GroupByTime(column=time.column, bucket=bucket, fiscal_year_start_month=month)
    raise WireError(path, "a group-by needs either a column or a time bucket")


def _filter_from_proto(message: pb.Filter, path: str) -> Filter:
    kind = message.WhichOneof("kind")
    if kind == "in_set":
        values = tuple(_in_set_value_from_text(value) for value in message.in_set.values)
        return InSetFilter(column=message.in_set.column, values=values)
    if kind == "date_range":
        item = message.date_range
        return DateRangeFilter(
            column=item.column,
            start=_parse_date(item.start, f"{path}.date_range.start"),
            end=_parse_date(item.end, f"{path}.date_range.end"),
        )
    if kind == "numeric_range":
        numeric = message.numeric_range
        low = numeric.low if numeric.HasField("low") else None
        high = numeric.high if numeric.HasField("high") else None
        for name, value in (("low", low), ("high", high)):
            if value is not None and not math.isfinite(value):
                raise WireError(
                    f"{path}.numeric_range.{name}",
                    f"must be a finite number or unset (open end), got {value}",
                )
        return NumericRangeFilter(column=numeric.column, low=low, high=high)
    raise WireError(path, "a filter needs one of in_set, date_range or numeric_range")


def _in_set_value_from_text(text: str) -> str | bool:
    if text == _TRUE:
        return True
    if text == _FALSE:
        return False
    return text


def _parse_date(text: str, path: str) -> date:
    if not text:
        raise WireError(path, "a date range needs both ends, as YYYY-MM-DD")
    if not _ISO_DATE.fullmatch(text):
        raise WireError(path, f"{text[:32]!r} is not a date in the form YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise WireError(path, f"{text!r} is not a calendar date") from exc


def _privacy_from_proto(message: pb.Query, path: str) -> PrivacyLoss:
    kind = message.WhichOneof("privacy")
    if kind == "rho":
        return PrivacyLoss(rho=parse_rho_text(message.rho, f"{path}.rho"))
    if kind == "accuracy":
        accuracy = message.accuracy
        if not math.isfinite(accuracy) or accuracy <= 0:
            raise WireError(
                f"{path}.accuracy",
                f"target accuracy must be a finite positive number, got {accuracy}",
            )
        return PrivacyLoss(accuracy=accuracy)
    raise WireError(f"{path}.privacy", "give either rho or a target accuracy")


def parse_rho_text(text: str, path: str) -> Decimal:
    """An exact, finite, non-negative decimal rho, or WireError naming `path`."""
    if len(text) > MAX_RHO_TEXT_CHARS:
        raise WireError(path, f"rho is longer than {MAX_RHO_TEXT_CHARS} characters")
    try:
        value = Decimal(text.strip())
    except InvalidOperation as exc:
        raise WireError(path, f"rho {text!r} is not a decimal number, e.g. '0.05'") from exc
    if not value.is_finite():
        raise WireError(path, f"rho must be a finite number, got {text!r}")
    if value < 0:
        raise WireError(path, f"rho must not be negative, got {text!r}")
    if value != 0 and value.adjusted() not in _RHO_EXPONENT_RANGE:
        raise WireError(path, f"rho {text!r} is out of range")
    return value


def _wire_error_from_validation(exc: ValidationError, path: str) -> WireError:
    first = exc.errors()[0]
    location = ".".join(str(part) for part in first["loc"])
    target = f"{path}.{location}" if location else path
    return WireError(target, str(first["msg"]))


# ---------------------------------------------------------------------------------
# Signed requests


def signed_request_to_proto(signed: SignedRequest) -> pb.SignedRequest:
    return pb.SignedRequest(
        envelope=signed.envelope_bytes,
        signature=signed.signature,
        public_key=signed.signer_public_key,
    )


def signed_request_from_proto(message: pb.SignedRequest) -> SignedRequest:
    return SignedRequest(
        envelope_bytes=message.envelope,
        signature=message.signature,
        signer_public_key=message.public_key,
    )


def signed_request_to_bytes(signed: SignedRequest) -> bytes:
    """How the ledger stores a signed request: canonical JSON, bytes as base64."""
    return json.dumps(
        {
            "envelope": base64.b64encode(signed.envelope_bytes).decode(),
            "signature": base64.b64encode(signed.signature).decode(),
            "public_key": base64.b64encode(signed.signer_public_key).decode(),
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()


def signed_request_from_bytes(data: bytes) -> SignedRequest:
    """Parse a signed request as the ledger stores it (ValueError if it is not one)."""
    try:
        fields = json.loads(data)
        return SignedRequest(
            envelope_bytes=base64.b64decode(fields["envelope"], validate=True),
            signature=base64.b64decode(fields["signature"], validate=True),
            signer_public_key=base64.b64decode(fields["public_key"], validate=True),
        )
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise ValueError("stored signed request is not in the ledger's format") from exc


@dataclass(frozen=True)
class QueryCall:
    """A parsed QueryRequest: the query and the analyst's signature over it."""

    spec: QuerySpec
    signed: SignedRequest


def query_request_to_proto(spec: QuerySpec, signed: SignedRequest) -> pb.QueryRequest:
    return pb.QueryRequest(query=query_to_proto(spec), signed=signed_request_to_proto(signed))


def query_request_from_proto(message: pb.QueryRequest) -> QueryCall:
    if not message.HasField("query"):
        raise WireError("query", "the request carries no query")
    if not message.HasField("signed"):
        raise WireError("signed", "a query must carry the analyst's signed request")
    return QueryCall(
        spec=query_from_proto(message.query), signed=signed_request_from_proto(message.signed)
    )


def preview_request_from_proto(message: pb.PreviewRequest) -> QuerySpec:
    if not message.HasField("query"):
        raise WireError("query", "the request carries no query")
    return query_from_proto(message.query)


# ---------------------------------------------------------------------------------
# Checkpoints and receipts


@dataclass(frozen=True)
class WireCheckpoint:
    """A signed checkpoint as received, with the fingerprint of the key said to sign it."""

    signed: DomainSignedCheckpoint
    key_fingerprint: str

    @property
    def size(self) -> int:
        return self.signed.checkpoint.size

    @property
    def root(self) -> bytes:
        return self.signed.checkpoint.root


def checkpoint_to_proto(
    signed: DomainSignedCheckpoint, key_fingerprint: str
) -> pb.SignedCheckpoint:
    return pb.SignedCheckpoint(
        origin=signed.checkpoint.origin,
        size=signed.checkpoint.size,
        root=signed.checkpoint.root,
        signature=signed.signature,
        key_fingerprint=key_fingerprint,
    )


def checkpoint_from_proto(
    message: pb.SignedCheckpoint, *, path: str = "checkpoint"
) -> WireCheckpoint:
    try:
        checkpoint = Checkpoint(origin=message.origin, size=message.size, root=message.root)
    except ValueError as exc:
        raise WireError(path, str(exc)) from exc
    return WireCheckpoint(
        signed=DomainSignedCheckpoint(checkpoint, message.signature),
        key_fingerprint=message.key_fingerprint,
    )


@dataclass(frozen=True)
class QueryAnswer:
    """A node's answer as the client received it: release bytes and the ledger receipt.

    `release_bytes` are the canonical Release bytes exactly as the node's ledger stored
    them; keep them (not a re-serialisation) to compare with the ledger later.
    """

    release_bytes: bytes
    entry_index: int
    tree_size: int
    inclusion_proof: tuple[bytes, ...]
    checkpoint: WireCheckpoint
    replayed: bool
    leaf_data: bytes

    def release(self) -> Release:
        return Release.from_bytes(self.release_bytes)

    def receipt(self) -> Receipt:
        """The ledger receipt: `.verify(ledger_public_key, answer.release_bytes)` checks it."""
        return Receipt(
            entry_index=self.entry_index,
            tree_size=self.tree_size,
            inclusion_proof=self.inclusion_proof,
            checkpoint=self.checkpoint.signed,
            replayed=self.replayed,
            leaf_data=self.leaf_data,
        )

    def verify(self, ledger_public_key: Ed25519PublicKey) -> bool:
        """The checkpoint is signed by the node's ledger key, the recorded entry holds
        exactly these release bytes, and it is included in the checkpoint's tree."""
        return self.receipt().verify(ledger_public_key, self.release_bytes)


def query_response_to_proto(
    release_bytes: bytes, receipt: Receipt, key_fingerprint: str
) -> pb.QueryResponse:
    return pb.QueryResponse(
        release_json=release_bytes,
        receipt=pb.Receipt(
            entry_index=receipt.entry_index,
            tree_size=receipt.tree_size,
            inclusion_proof=list(receipt.inclusion_proof),
            checkpoint=checkpoint_to_proto(receipt.checkpoint, key_fingerprint),
            replayed=receipt.replayed,
            leaf_data=receipt.leaf_data,
        ),
    )


def query_response_from_proto(message: pb.QueryResponse) -> QueryAnswer:
    receipt = message.receipt
    try:
        Release.from_bytes(message.release_json)
    except ValidationError as exc:
        raise WireError("release_json", "the node's release is not a valid Release") from exc
    return QueryAnswer(
        release_bytes=message.release_json,
        entry_index=receipt.entry_index,
        tree_size=receipt.tree_size,
        inclusion_proof=tuple(receipt.inclusion_proof),
        checkpoint=checkpoint_from_proto(receipt.checkpoint, path="receipt.checkpoint"),
        replayed=receipt.replayed,
        leaf_data=receipt.leaf_data,
    )


# ---------------------------------------------------------------------------------
# Ledger entries (auditors)


def ledger_entry_to_proto(entry: LedgerEntry) -> pb.LedgerEntry:
    leaf_data = entry.canonical_bytes()
    return pb.LedgerEntry(
        seq=entry.seq,
        time=entry.time,
        query_id=entry.query_id,
        analyst=entry.analyst,
        dataset=entry.dataset,
        statistic=entry.statistic,
        signed_request=entry.signed_request or b"",
        has_signed_request=entry.signed_request is not None,
        canonical_query=entry.canonical_query,
        query_hash=entry.query_hash,
        purpose=entry.purpose,
        mechanism_summary=entry.mechanism_summary,
        cost_units=entry.cost_units,
        epsilon=entry.epsilon,
        delta=entry.delta,
        opendp_version=entry.opendp_version,
        snapshot_id=entry.snapshot_id,
        status=entry.status,
        answer=entry.answer,
        leaf_data=leaf_data,
        leaf_hash=leaf_hash(leaf_data),
    )


def ledger_entry_from_proto(message: pb.LedgerEntry, *, path: str = "entries") -> LedgerEntry:
    """The entry from its structured fields; WireError if they disagree with `leaf_data`."""
    entry = LedgerEntry(
        seq=message.seq,
        time=message.time,
        query_id=message.query_id,
        analyst=message.analyst,
        dataset=message.dataset,
        statistic=message.statistic,
        signed_request=message.signed_request if message.has_signed_request else None,
        canonical_query=message.canonical_query,
        query_hash=message.query_hash,
        purpose=message.purpose,
        mechanism_summary=message.mechanism_summary,
        cost_units=message.cost_units,
        epsilon=message.epsilon,
        delta=message.delta,
        opendp_version=message.opendp_version,
        snapshot_id=message.snapshot_id,
        status=message.status,
        answer=message.answer,
    )
    if entry.canonical_bytes() != message.leaf_data:
        raise WireError(f"{path}[{message.seq}].leaf_data", "does not match the entry's fields")
    if leaf_hash(message.leaf_data) != message.leaf_hash:
        raise WireError(f"{path}[{message.seq}].leaf_hash", "is not the hash of leaf_data")
    return entry


# ---------------------------------------------------------------------------------
# Preview


class ExpectedLike(Protocol):
    """One value's expected noise (privacy.plan's expected values satisfy this)."""

    @property
    def name(self) -> str: ...
    @property
    def distribution(self) -> str: ...
    @property
    def scale(self) -> float: ...
    @property
    def ci_half_width(self) -> float: ...


@dataclass(frozen=True)
class ExpectedValue:
    name: str
    distribution: str
    scale: float
    ci_half_width: float


@dataclass(frozen=True)
class PreviewResult:
    """What a query would cost and how accurate it would be; nothing is charged."""

    cost_units: int
    expected: tuple[ExpectedValue, ...]
    remaining_units: int

    @property
    def cost_rho(self) -> str:
        return format_rho(self.cost_units)


def preview_to_proto(
    cost_units: int, expected: Iterable[ExpectedLike], remaining_units: int
) -> pb.PreviewResponse:
    return pb.PreviewResponse(
        cost_units=cost_units,
        cost_rho=format_rho(cost_units),
        expected=[
            pb.ExpectedValue(
                name=value.name,
                distribution=str(value.distribution),
                scale=value.scale,
                ci_half_width=value.ci_half_width,
            )
            for value in expected
        ],
        remaining_units=remaining_units,
    )


def preview_from_proto(message: pb.PreviewResponse) -> PreviewResult:
    return PreviewResult(
        cost_units=message.cost_units,
        expected=tuple(
            ExpectedValue(
                name=value.name,
                distribution=value.distribution,
                scale=value.scale,
                ci_half_width=value.ci_half_width,
            )
            for value in message.expected
        ),
        remaining_units=message.remaining_units,
    )


# ---------------------------------------------------------------------------------
# Describe


@dataclass(frozen=True)
class PolicyView:
    """The node's budget policy as published to the partnership."""

    datasets: tuple[str, ...]
    total_rho_per_dataset: Mapping[str, str]
    max_rho_per_query: str
    analyst_cap_rho: str | None
    delta: str


@dataclass(frozen=True)
class NodeDescription:
    """Everything `Describe` tells a caller about a node."""

    node_name: str
    partnership: str
    schema: Schema
    policy: PolicyView
    remaining_units: Mapping[str, int]
    """The caller's remaining budget per dataset, micro-rho (empty for non-analysts)."""
    child_population: Mapping[str, int]
    ledger_public_key_pem: str
    latest_checkpoint: WireCheckpoint | None
    opendp_version: str


def describe_to_proto(
    description: NodeDescription, *, checkpoint_fingerprint: str = ""
) -> pb.DescribeResponse:
    policy = description.policy
    message = pb.DescribeResponse(
        node_name=description.node_name,
        partnership=description.partnership,
        schema_json=description.schema.to_json(),
        schema_version=description.schema.version,
        policy=pb.Policy(
            datasets=list(policy.datasets),
            total_rho_per_dataset=dict(policy.total_rho_per_dataset),
            max_rho_per_query=policy.max_rho_per_query,
            delta=policy.delta,
        ),
        remaining=[
            pb.DatasetBudget(dataset=name, remaining_units=units, remaining_rho=format_rho(units))
            for name, units in sorted(description.remaining_units.items())
        ],
        child_population=dict(description.child_population),
        ledger_public_key_pem=description.ledger_public_key_pem,
        opendp_version=description.opendp_version,
    )
    if policy.analyst_cap_rho is not None:
        message.policy.analyst_cap_rho = policy.analyst_cap_rho
    if description.latest_checkpoint is not None:
        checkpoint = description.latest_checkpoint
        message.latest_checkpoint.CopyFrom(
            checkpoint_to_proto(
                checkpoint.signed, checkpoint.key_fingerprint or checkpoint_fingerprint
            )
        )
    return message


def describe_from_proto(message: pb.DescribeResponse) -> NodeDescription:
    try:
        schema = Schema.from_json(message.schema_json)
    except ValidationError as exc:
        raise WireError("schema_json", "the node's schema is not a valid Schema") from exc
    policy = message.policy
    return NodeDescription(
        node_name=message.node_name,
        partnership=message.partnership,
        schema=schema,
        policy=PolicyView(
            datasets=tuple(policy.datasets),
            total_rho_per_dataset=dict(policy.total_rho_per_dataset),
            max_rho_per_query=policy.max_rho_per_query,
            analyst_cap_rho=(
                policy.analyst_cap_rho if policy.HasField("analyst_cap_rho") else None
            ),
            delta=policy.delta,
        ),
        remaining_units={budget.dataset: budget.remaining_units for budget in message.remaining},
        child_population=dict(message.child_population),
        ledger_public_key_pem=message.ledger_public_key_pem,
        latest_checkpoint=(
            checkpoint_from_proto(message.latest_checkpoint, path="latest_checkpoint")
            if message.HasField("latest_checkpoint")
            else None
        ),
        opendp_version=message.opendp_version,
    )


# ---------------------------------------------------------------------------------
# Error details in trailing metadata


@dataclass(frozen=True)
class BudgetShortfall:
    """Why a query was refused for budget: which budget, and how far short."""

    dataset: str
    scope: str
    requested_units: int
    remaining_units: int

    def describe(self) -> str:
        return (
            f"the {self.scope} budget for {self.dataset!r} has {format_rho(self.remaining_units)} "
            f"rho left, the query needs {format_rho(self.requested_units)}: ask for less "
            "(a smaller rho or a looser accuracy)"
        )


def budget_metadata(shortfall: BudgetShortfall) -> tuple[tuple[str, bytes], ...]:
    detail = pb.BudgetExhausted(
        dataset=shortfall.dataset,
        scope=shortfall.scope,
        requested_units=shortfall.requested_units,
        remaining_units=shortfall.remaining_units,
    )
    return ((BUDGET_METADATA_KEY, detail.SerializeToString()),)


def field_metadata(field_path: str, description: str) -> tuple[tuple[str, bytes], ...]:
    detail = pb.FieldViolation(field=field_path, description=description)
    return ((FIELD_METADATA_KEY, detail.SerializeToString()),)


def budget_shortfall_from_metadata(
    metadata: Iterable[Any] | None,
) -> BudgetShortfall | None:
    raw = _metadata_value(metadata, BUDGET_METADATA_KEY)
    if raw is None:
        return None
    detail = pb.BudgetExhausted.FromString(raw)
    return BudgetShortfall(
        dataset=detail.dataset,
        scope=detail.scope,
        requested_units=detail.requested_units,
        remaining_units=detail.remaining_units,
    )


def field_violation_from_metadata(
    metadata: Iterable[Any] | None,
) -> tuple[str, str] | None:
    """(field, description) from INVALID_ARGUMENT trailing metadata, if present."""
    raw = _metadata_value(metadata, FIELD_METADATA_KEY)
    if raw is None:
        return None
    detail = pb.FieldViolation.FromString(raw)
    return detail.field, detail.description


def _metadata_value(metadata: Iterable[Any] | None, key: str) -> bytes | None:
    for name, value in metadata or ():
        if name == key:
            return value if isinstance(value, bytes) else value.encode()
    return None
