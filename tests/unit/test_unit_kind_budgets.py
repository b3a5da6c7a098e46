"""One budget per person, per node: datasets about the same kind of person (a child in
`incidents` and `reports`) charge one budget, checked with exact arithmetic in the charge's
transaction; node.toml sets it per unit kind, and older per-dataset settings migrate."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from support_ledger import charge_request

from kernel.keyfiles import generate_ed25519_key
from node.settings import BudgetSettings, SettingsError, load_settings
from privacy.ledger.entry import ChargeRequest
from privacy.ledger.writer import Ledger
from privacy.policy import BudgetExceeded, BudgetPolicy
from privacy.schema import PARTNERSHIP_SCHEMA, Schema, UnitKind

ORIGIN = "npcs/test/node-a/ledger"


def charge(query_id: str, dataset: str, cost: int) -> ChargeRequest:
    return charge_request(
        query_id,
        f'{{"dataset":"{dataset}","id":"{query_id}"}}'.encode(),
        dataset=dataset,
        cost_units=cost,
    )


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    policy = BudgetPolicy.from_rho({"child": "1", "staff": "2"}, "1")
    opened = Ledger.open(
        tmp_path / "ledger.sqlite",
        origin=ORIGIN,
        signing_key=generate_ed25519_key(),
        policy=policy,
    )
    yield opened
    opened.close()


def test_the_schema_names_each_datasets_unit_kind() -> None:
    assert PARTNERSHIP_SCHEMA.unit_kind_of_dataset() == {
        "incidents": "child",
        "reports": "child",
        "workforce": "staff",
        "workforce_years": "staff",
        "safety_culture": "staff",
    }


def test_a_child_query_on_reports_reduces_what_is_left_for_incidents(ledger: Ledger) -> None:
    assert ledger.remaining_units("incidents") == 1_000_000
    ledger.charge_and_release(charge("r1", "reports", 300_000), lambda: b"a")
    assert ledger.remaining_units("incidents") == 700_000
    assert ledger.remaining_units("reports") == 700_000
    assert ledger.remaining_units("workforce") == 2_000_000  # staff: another budget


def test_over_budget_across_two_child_datasets_is_refused_and_charges_nothing(
    ledger: Ledger,
) -> None:
    ledger.charge_and_release(charge("i1", "incidents", 600_000), lambda: b"a")
    before = ledger.latest_checkpoint()
    released: list[bytes] = []

    def release() -> bytes:
        released.append(b"never")
        return b"never"

    with pytest.raises(BudgetExceeded) as refused:
        ledger.charge_and_release(charge("r-over", "reports", 400_001), release)
    assert refused.value.scope == "unit_kind"
    assert refused.value.unit_kind == "child"
    assert (refused.value.requested_units, refused.value.remaining_units) == (400_001, 400_000)
    assert "child budget" in str(refused.value)
    assert released == []
    assert ledger.size() == 1
    assert ledger.entry_by_query_id("r-over") is None
    assert ledger.spent_units("reports") == 0
    assert ledger.latest_checkpoint() == before
    ledger.charge_and_release(charge("r-fits", "reports", 400_000), lambda: b"b")  # exactly
    assert ledger.remaining_units("incidents") == 0


def test_staff_datasets_share_one_budget_and_workforce_years_is_one_of_them(
    ledger: Ledger,
) -> None:
    ledger.charge_and_release(charge("w1", "workforce", 1_000_000), lambda: b"a")
    ledger.charge_and_release(charge("y1", "workforce_years", 500_000), lambda: b"a")
    with pytest.raises(BudgetExceeded):
        ledger.charge_and_release(charge("s1", "safety_culture", 500_001), lambda: b"a")
    assert ledger.remaining_units("safety_culture") == 500_000
    assert ledger.remaining_units("incidents") == 1_000_000


def test_settings_set_budgets_per_unit_kind(tmp_path: Path) -> None:
    (tmp_path / "node.toml").write_text(
        'name = "a"\npartnership = "p"\n[budget]\n'
        'total_rho_per_unit_kind = { child = "3", staff = "0.5" }\n'
    )
    assert load_settings(tmp_path).budget.unit_kind_totals() == {"child": "3", "staff": "0.5"}
    assert BudgetSettings().unit_kind_totals() == {kind.value: "10" for kind in UnitKind}


def test_old_per_dataset_settings_migrate_to_the_largest_total_of_each_kind() -> None:
    old = BudgetSettings(
        total_rho_per_dataset={"incidents": "1", "reports": "2.5", "workforce": "0.75"}
    )
    assert old.unit_kind_totals() == {"child": "2.5", "staff": "0.75"}


def test_both_kinds_of_totals_at_once_is_an_error_saying_what_to_write(tmp_path: Path) -> None:
    (tmp_path / "node.toml").write_text(
        'name = "a"\npartnership = "p"\n[budget]\n'
        'total_rho_per_unit_kind = { child = "3" }\n'
        'total_rho_per_dataset = { incidents = "1", reports = "2" }\n'
    )
    with pytest.raises(SettingsError, match=r'remove budget.total_rho_per_dataset.*child = "2"'):
        load_settings(tmp_path)


def test_an_unknown_unit_kind_is_refused_with_did_you_mean(tmp_path: Path) -> None:
    (tmp_path / "node.toml").write_text(
        'name = "a"\npartnership = "p"\n[budget]\ntotal_rho_per_unit_kind = { chlid = "3" }\n'
    )
    with pytest.raises(SettingsError, match="did you mean 'child'"):
        load_settings(tmp_path)


def test_a_schema_published_before_unit_kinds_still_parses_with_the_partnerships_kinds() -> None:
    older = json.loads(PARTNERSHIP_SCHEMA.to_json())
    for dataset in older["datasets"]:
        del dataset["unit_kind"]
    parsed = Schema.from_json(json.dumps(older))
    assert parsed.unit_kind_of_dataset() == PARTNERSHIP_SCHEMA.unit_kind_of_dataset()
