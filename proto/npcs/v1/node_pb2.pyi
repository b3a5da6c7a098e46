from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Statistic(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATISTIC_UNSPECIFIED: _ClassVar[Statistic]
    STATISTIC_COUNT: _ClassVar[Statistic]
    STATISTIC_SUM: _ClassVar[Statistic]
    STATISTIC_MEAN: _ClassVar[Statistic]
    STATISTIC_QUANTILES: _ClassVar[Statistic]
    STATISTIC_HISTOGRAM: _ClassVar[Statistic]

class TimeBucket(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TIME_BUCKET_UNSPECIFIED: _ClassVar[TimeBucket]
    TIME_BUCKET_YEAR: _ClassVar[TimeBucket]
    TIME_BUCKET_FISCAL_YEAR: _ClassVar[TimeBucket]
    TIME_BUCKET_QUARTER: _ClassVar[TimeBucket]
    TIME_BUCKET_MONTH: _ClassVar[TimeBucket]
STATISTIC_UNSPECIFIED: Statistic
STATISTIC_COUNT: Statistic
STATISTIC_SUM: Statistic
STATISTIC_MEAN: Statistic
STATISTIC_QUANTILES: Statistic
STATISTIC_HISTOGRAM: Statistic
TIME_BUCKET_UNSPECIFIED: TimeBucket
TIME_BUCKET_YEAR: TimeBucket
TIME_BUCKET_FISCAL_YEAR: TimeBucket
TIME_BUCKET_QUARTER: TimeBucket
TIME_BUCKET_MONTH: TimeBucket

class GroupByColumn(_message.Message):
    __slots__ = ("column",)
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    column: str
    def __init__(self, column: _Optional[str] = ...) -> None: ...

class GroupByTime(_message.Message):
    __slots__ = ("column", "bucket", "fiscal_year_start_month")
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    FISCAL_YEAR_START_MONTH_FIELD_NUMBER: _ClassVar[int]
    column: str
    bucket: TimeBucket
    fiscal_year_start_month: int
    def __init__(self, column: _Optional[str] = ..., bucket: _Optional[_Union[TimeBucket, str]] = ..., fiscal_year_start_month: _Optional[int] = ...) -> None: ...

class GroupBy(_message.Message):
    __slots__ = ("column", "time")
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    column: GroupByColumn
    time: GroupByTime
    def __init__(self, column: _Optional[_Union[GroupByColumn, _Mapping]] = ..., time: _Optional[_Union[GroupByTime, _Mapping]] = ...) -> None: ...

class InSetFilter(_message.Message):
    __slots__ = ("column", "values")
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    column: str
    values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, column: _Optional[str] = ..., values: _Optional[_Iterable[str]] = ...) -> None: ...

class DateRangeFilter(_message.Message):
    __slots__ = ("column", "start", "end")
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    column: str
    start: str
    end: str
    def __init__(self, column: _Optional[str] = ..., start: _Optional[str] = ..., end: _Optional[str] = ...) -> None: ...

class NumericRangeFilter(_message.Message):
    __slots__ = ("column", "low", "high")
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    column: str
    low: float
    high: float
    def __init__(self, column: _Optional[str] = ..., low: _Optional[float] = ..., high: _Optional[float] = ...) -> None: ...

class Filter(_message.Message):
    __slots__ = ("in_set", "date_range", "numeric_range")
    IN_SET_FIELD_NUMBER: _ClassVar[int]
    DATE_RANGE_FIELD_NUMBER: _ClassVar[int]
    NUMERIC_RANGE_FIELD_NUMBER: _ClassVar[int]
    in_set: InSetFilter
    date_range: DateRangeFilter
    numeric_range: NumericRangeFilter
    def __init__(self, in_set: _Optional[_Union[InSetFilter, _Mapping]] = ..., date_range: _Optional[_Union[DateRangeFilter, _Mapping]] = ..., numeric_range: _Optional[_Union[NumericRangeFilter, _Mapping]] = ...) -> None: ...

class Query(_message.Message):
    __slots__ = ("query_id", "dataset", "statistic", "column", "quantiles", "bins", "group_by", "filters", "rho", "accuracy", "purpose", "items", "quantile_count")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    STATISTIC_FIELD_NUMBER: _ClassVar[int]
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    QUANTILES_FIELD_NUMBER: _ClassVar[int]
    BINS_FIELD_NUMBER: _ClassVar[int]
    GROUP_BY_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    RHO_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    QUANTILE_COUNT_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    dataset: str
    statistic: Statistic
    column: str
    quantiles: _containers.RepeatedScalarFieldContainer[float]
    bins: _containers.RepeatedScalarFieldContainer[float]
    group_by: _containers.RepeatedCompositeFieldContainer[GroupBy]
    filters: _containers.RepeatedCompositeFieldContainer[Filter]
    rho: str
    accuracy: float
    purpose: str
    items: _containers.RepeatedScalarFieldContainer[str]
    quantile_count: bool
    def __init__(self, query_id: _Optional[str] = ..., dataset: _Optional[str] = ..., statistic: _Optional[_Union[Statistic, str]] = ..., column: _Optional[str] = ..., quantiles: _Optional[_Iterable[float]] = ..., bins: _Optional[_Iterable[float]] = ..., group_by: _Optional[_Iterable[_Union[GroupBy, _Mapping]]] = ..., filters: _Optional[_Iterable[_Union[Filter, _Mapping]]] = ..., rho: _Optional[str] = ..., accuracy: _Optional[float] = ..., purpose: _Optional[str] = ..., items: _Optional[_Iterable[str]] = ..., quantile_count: _Optional[bool] = ...) -> None: ...

class SignedRequest(_message.Message):
    __slots__ = ("envelope", "signature", "public_key")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    envelope: bytes
    signature: bytes
    public_key: bytes
    def __init__(self, envelope: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., public_key: _Optional[bytes] = ...) -> None: ...

class QueryRequest(_message.Message):
    __slots__ = ("query", "signed", "remembered_size")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    SIGNED_FIELD_NUMBER: _ClassVar[int]
    REMEMBERED_SIZE_FIELD_NUMBER: _ClassVar[int]
    query: Query
    signed: SignedRequest
    remembered_size: int
    def __init__(self, query: _Optional[_Union[Query, _Mapping]] = ..., signed: _Optional[_Union[SignedRequest, _Mapping]] = ..., remembered_size: _Optional[int] = ...) -> None: ...

class SignedCheckpoint(_message.Message):
    __slots__ = ("origin", "size", "root", "signature", "key_fingerprint")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    ROOT_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    KEY_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    origin: str
    size: int
    root: bytes
    signature: bytes
    key_fingerprint: str
    def __init__(self, origin: _Optional[str] = ..., size: _Optional[int] = ..., root: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., key_fingerprint: _Optional[str] = ...) -> None: ...

class Receipt(_message.Message):
    __slots__ = ("entry_index", "tree_size", "inclusion_proof", "checkpoint", "replayed", "leaf_data", "consistency")
    ENTRY_INDEX_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    INCLUSION_PROOF_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    LEAF_DATA_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    entry_index: int
    tree_size: int
    inclusion_proof: _containers.RepeatedScalarFieldContainer[bytes]
    checkpoint: SignedCheckpoint
    replayed: bool
    leaf_data: bytes
    consistency: ConsistencyFromRemembered
    def __init__(self, entry_index: _Optional[int] = ..., tree_size: _Optional[int] = ..., inclusion_proof: _Optional[_Iterable[bytes]] = ..., checkpoint: _Optional[_Union[SignedCheckpoint, _Mapping]] = ..., replayed: _Optional[bool] = ..., leaf_data: _Optional[bytes] = ..., consistency: _Optional[_Union[ConsistencyFromRemembered, _Mapping]] = ...) -> None: ...

class ConsistencyFromRemembered(_message.Message):
    __slots__ = ("old_size", "proof")
    OLD_SIZE_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    old_size: int
    proof: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, old_size: _Optional[int] = ..., proof: _Optional[_Iterable[bytes]] = ...) -> None: ...

class QueryResponse(_message.Message):
    __slots__ = ("release_json", "receipt")
    RELEASE_JSON_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    release_json: bytes
    receipt: Receipt
    def __init__(self, release_json: _Optional[bytes] = ..., receipt: _Optional[_Union[Receipt, _Mapping]] = ...) -> None: ...

class PreviewRequest(_message.Message):
    __slots__ = ("query", "describe", "remembered_size")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    DESCRIBE_FIELD_NUMBER: _ClassVar[int]
    REMEMBERED_SIZE_FIELD_NUMBER: _ClassVar[int]
    query: Query
    describe: bool
    remembered_size: int
    def __init__(self, query: _Optional[_Union[Query, _Mapping]] = ..., describe: _Optional[bool] = ..., remembered_size: _Optional[int] = ...) -> None: ...

class ExpectedValue(_message.Message):
    __slots__ = ("name", "distribution", "scale", "ci_half_width")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    SCALE_FIELD_NUMBER: _ClassVar[int]
    CI_HALF_WIDTH_FIELD_NUMBER: _ClassVar[int]
    name: str
    distribution: str
    scale: float
    ci_half_width: float
    def __init__(self, name: _Optional[str] = ..., distribution: _Optional[str] = ..., scale: _Optional[float] = ..., ci_half_width: _Optional[float] = ...) -> None: ...

class PreviewResponse(_message.Message):
    __slots__ = ("cost_units", "cost_rho", "expected", "remaining_units", "description")
    COST_UNITS_FIELD_NUMBER: _ClassVar[int]
    COST_RHO_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_FIELD_NUMBER: _ClassVar[int]
    REMAINING_UNITS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    cost_units: int
    cost_rho: str
    expected: _containers.RepeatedCompositeFieldContainer[ExpectedValue]
    remaining_units: int
    description: DescribeResponse
    def __init__(self, cost_units: _Optional[int] = ..., cost_rho: _Optional[str] = ..., expected: _Optional[_Iterable[_Union[ExpectedValue, _Mapping]]] = ..., remaining_units: _Optional[int] = ..., description: _Optional[_Union[DescribeResponse, _Mapping]] = ...) -> None: ...

class DescribeRequest(_message.Message):
    __slots__ = ("remembered_size", "unit_kind_epsilon")
    REMEMBERED_SIZE_FIELD_NUMBER: _ClassVar[int]
    UNIT_KIND_EPSILON_FIELD_NUMBER: _ClassVar[int]
    remembered_size: int
    unit_kind_epsilon: bool
    def __init__(self, remembered_size: _Optional[int] = ..., unit_kind_epsilon: _Optional[bool] = ...) -> None: ...

class Policy(_message.Message):
    __slots__ = ("datasets", "total_rho_per_dataset", "max_rho_per_query", "analyst_cap_rho", "delta", "total_rho_per_unit_kind")
    class TotalRhoPerDatasetEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class TotalRhoPerUnitKindEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_RHO_PER_DATASET_FIELD_NUMBER: _ClassVar[int]
    MAX_RHO_PER_QUERY_FIELD_NUMBER: _ClassVar[int]
    ANALYST_CAP_RHO_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    TOTAL_RHO_PER_UNIT_KIND_FIELD_NUMBER: _ClassVar[int]
    datasets: _containers.RepeatedScalarFieldContainer[str]
    total_rho_per_dataset: _containers.ScalarMap[str, str]
    max_rho_per_query: str
    analyst_cap_rho: str
    delta: str
    total_rho_per_unit_kind: _containers.ScalarMap[str, str]
    def __init__(self, datasets: _Optional[_Iterable[str]] = ..., total_rho_per_dataset: _Optional[_Mapping[str, str]] = ..., max_rho_per_query: _Optional[str] = ..., analyst_cap_rho: _Optional[str] = ..., delta: _Optional[str] = ..., total_rho_per_unit_kind: _Optional[_Mapping[str, str]] = ...) -> None: ...

class UnitKindBudget(_message.Message):
    __slots__ = ("unit_kind", "datasets", "total_rho", "spent_units", "remaining_units", "spent_epsilon", "total_epsilon")
    UNIT_KIND_FIELD_NUMBER: _ClassVar[int]
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_RHO_FIELD_NUMBER: _ClassVar[int]
    SPENT_UNITS_FIELD_NUMBER: _ClassVar[int]
    REMAINING_UNITS_FIELD_NUMBER: _ClassVar[int]
    SPENT_EPSILON_FIELD_NUMBER: _ClassVar[int]
    TOTAL_EPSILON_FIELD_NUMBER: _ClassVar[int]
    unit_kind: str
    datasets: _containers.RepeatedScalarFieldContainer[str]
    total_rho: str
    spent_units: int
    remaining_units: int
    spent_epsilon: str
    total_epsilon: str
    def __init__(self, unit_kind: _Optional[str] = ..., datasets: _Optional[_Iterable[str]] = ..., total_rho: _Optional[str] = ..., spent_units: _Optional[int] = ..., remaining_units: _Optional[int] = ..., spent_epsilon: _Optional[str] = ..., total_epsilon: _Optional[str] = ...) -> None: ...

class DatasetBudget(_message.Message):
    __slots__ = ("dataset", "remaining_units", "remaining_rho")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    REMAINING_UNITS_FIELD_NUMBER: _ClassVar[int]
    REMAINING_RHO_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    remaining_units: int
    remaining_rho: str
    def __init__(self, dataset: _Optional[str] = ..., remaining_units: _Optional[int] = ..., remaining_rho: _Optional[str] = ...) -> None: ...

class DescribeResponse(_message.Message):
    __slots__ = ("node_name", "partnership", "schema_json", "schema_version", "policy", "remaining", "child_population", "ledger_public_key_pem", "latest_checkpoint", "opendp_version", "group_populations", "population_source", "consistency", "unit_kind_budgets")
    class ChildPopulationEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    PARTNERSHIP_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_JSON_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    CHILD_POPULATION_FIELD_NUMBER: _ClassVar[int]
    LEDGER_PUBLIC_KEY_PEM_FIELD_NUMBER: _ClassVar[int]
    LATEST_CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    OPENDP_VERSION_FIELD_NUMBER: _ClassVar[int]
    GROUP_POPULATIONS_FIELD_NUMBER: _ClassVar[int]
    POPULATION_SOURCE_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    UNIT_KIND_BUDGETS_FIELD_NUMBER: _ClassVar[int]
    node_name: str
    partnership: str
    schema_json: str
    schema_version: str
    policy: Policy
    remaining: _containers.RepeatedCompositeFieldContainer[DatasetBudget]
    child_population: _containers.ScalarMap[str, int]
    ledger_public_key_pem: str
    latest_checkpoint: SignedCheckpoint
    opendp_version: str
    group_populations: _containers.RepeatedCompositeFieldContainer[GroupPopulation]
    population_source: str
    consistency: ConsistencyFromRemembered
    unit_kind_budgets: _containers.RepeatedCompositeFieldContainer[UnitKindBudget]
    def __init__(self, node_name: _Optional[str] = ..., partnership: _Optional[str] = ..., schema_json: _Optional[str] = ..., schema_version: _Optional[str] = ..., policy: _Optional[_Union[Policy, _Mapping]] = ..., remaining: _Optional[_Iterable[_Union[DatasetBudget, _Mapping]]] = ..., child_population: _Optional[_Mapping[str, int]] = ..., ledger_public_key_pem: _Optional[str] = ..., latest_checkpoint: _Optional[_Union[SignedCheckpoint, _Mapping]] = ..., opendp_version: _Optional[str] = ..., group_populations: _Optional[_Iterable[_Union[GroupPopulation, _Mapping]]] = ..., population_source: _Optional[str] = ..., consistency: _Optional[_Union[ConsistencyFromRemembered, _Mapping]] = ..., unit_kind_budgets: _Optional[_Iterable[_Union[UnitKindBudget, _Mapping]]] = ...) -> None: ...

class GroupPopulation(_message.Message):
    __slots__ = ("year", "column", "value", "population")
    YEAR_FIELD_NUMBER: _ClassVar[int]
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    POPULATION_FIELD_NUMBER: _ClassVar[int]
    year: str
    column: str
    value: str
    population: int
    def __init__(self, year: _Optional[str] = ..., column: _Optional[str] = ..., value: _Optional[str] = ..., population: _Optional[int] = ...) -> None: ...

class GetCheckpointRequest(_message.Message):
    __slots__ = ("remembered_size",)
    REMEMBERED_SIZE_FIELD_NUMBER: _ClassVar[int]
    remembered_size: int
    def __init__(self, remembered_size: _Optional[int] = ...) -> None: ...

class GetCheckpointResponse(_message.Message):
    __slots__ = ("checkpoint", "consistency")
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    checkpoint: SignedCheckpoint
    consistency: ConsistencyFromRemembered
    def __init__(self, checkpoint: _Optional[_Union[SignedCheckpoint, _Mapping]] = ..., consistency: _Optional[_Union[ConsistencyFromRemembered, _Mapping]] = ...) -> None: ...

class GetLedgerRequest(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: int
    end: int
    def __init__(self, start: _Optional[int] = ..., end: _Optional[int] = ...) -> None: ...

class LedgerEntry(_message.Message):
    __slots__ = ("seq", "time", "query_id", "analyst", "dataset", "statistic", "signed_request", "has_signed_request", "canonical_query", "query_hash", "purpose", "mechanism_summary", "cost_units", "epsilon", "delta", "opendp_version", "snapshot_id", "status", "answer", "leaf_data", "leaf_hash")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    ANALYST_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    STATISTIC_FIELD_NUMBER: _ClassVar[int]
    SIGNED_REQUEST_FIELD_NUMBER: _ClassVar[int]
    HAS_SIGNED_REQUEST_FIELD_NUMBER: _ClassVar[int]
    CANONICAL_QUERY_FIELD_NUMBER: _ClassVar[int]
    QUERY_HASH_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    MECHANISM_SUMMARY_FIELD_NUMBER: _ClassVar[int]
    COST_UNITS_FIELD_NUMBER: _ClassVar[int]
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    OPENDP_VERSION_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    LEAF_DATA_FIELD_NUMBER: _ClassVar[int]
    LEAF_HASH_FIELD_NUMBER: _ClassVar[int]
    seq: int
    time: str
    query_id: str
    analyst: str
    dataset: str
    statistic: str
    signed_request: bytes
    has_signed_request: bool
    canonical_query: bytes
    query_hash: str
    purpose: str
    mechanism_summary: str
    cost_units: int
    epsilon: str
    delta: str
    opendp_version: str
    snapshot_id: str
    status: str
    answer: bytes
    leaf_data: bytes
    leaf_hash: bytes
    def __init__(self, seq: _Optional[int] = ..., time: _Optional[str] = ..., query_id: _Optional[str] = ..., analyst: _Optional[str] = ..., dataset: _Optional[str] = ..., statistic: _Optional[str] = ..., signed_request: _Optional[bytes] = ..., has_signed_request: _Optional[bool] = ..., canonical_query: _Optional[bytes] = ..., query_hash: _Optional[str] = ..., purpose: _Optional[str] = ..., mechanism_summary: _Optional[str] = ..., cost_units: _Optional[int] = ..., epsilon: _Optional[str] = ..., delta: _Optional[str] = ..., opendp_version: _Optional[str] = ..., snapshot_id: _Optional[str] = ..., status: _Optional[str] = ..., answer: _Optional[bytes] = ..., leaf_data: _Optional[bytes] = ..., leaf_hash: _Optional[bytes] = ...) -> None: ...

class GetLedgerResponse(_message.Message):
    __slots__ = ("entries", "checkpoint")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[LedgerEntry]
    checkpoint: SignedCheckpoint
    def __init__(self, entries: _Optional[_Iterable[_Union[LedgerEntry, _Mapping]]] = ..., checkpoint: _Optional[_Union[SignedCheckpoint, _Mapping]] = ...) -> None: ...

class GetConsistencyProofRequest(_message.Message):
    __slots__ = ("old_size", "new_size")
    OLD_SIZE_FIELD_NUMBER: _ClassVar[int]
    NEW_SIZE_FIELD_NUMBER: _ClassVar[int]
    old_size: int
    new_size: int
    def __init__(self, old_size: _Optional[int] = ..., new_size: _Optional[int] = ...) -> None: ...

class GetConsistencyProofResponse(_message.Message):
    __slots__ = ("proof", "checkpoint")
    PROOF_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    proof: _containers.RepeatedScalarFieldContainer[bytes]
    checkpoint: SignedCheckpoint
    def __init__(self, proof: _Optional[_Iterable[bytes]] = ..., checkpoint: _Optional[_Union[SignedCheckpoint, _Mapping]] = ...) -> None: ...

class BudgetExhausted(_message.Message):
    __slots__ = ("dataset", "scope", "requested_units", "remaining_units")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_UNITS_FIELD_NUMBER: _ClassVar[int]
    REMAINING_UNITS_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    scope: str
    requested_units: int
    remaining_units: int
    def __init__(self, dataset: _Optional[str] = ..., scope: _Optional[str] = ..., requested_units: _Optional[int] = ..., remaining_units: _Optional[int] = ...) -> None: ...

class FieldViolation(_message.Message):
    __slots__ = ("field", "description")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    field: str
    description: str
    def __init__(self, field: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...
