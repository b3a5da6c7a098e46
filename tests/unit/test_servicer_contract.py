"""The node's servicer refuses to start unless its handlers are exactly the compiled
`npcs.v1.Node` service's rpcs (names, request types, unary)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from node.security import AUDITOR_ROLES
from node.servicer import NODE_SERVICE, NodeServicer, Rpc, ServiceContractError
from npcs.v1 import node_pb2 as pb


def test_the_servicer_handles_exactly_the_compiled_rpcs() -> None:
    NodeServicer.check_contract()
    assert set(NodeServicer.rpcs()) == {method.name for method in NODE_SERVICE.methods}


class MissingGetLedger(NodeServicer):
    @classmethod
    def rpcs(cls) -> Mapping[str, Rpc]:
        return {name: rpc for name, rpc in super().rpcs().items() if name != "GetLedger"}


class ExtraDeleteLedger(NodeServicer):
    @classmethod
    def rpcs(cls) -> Mapping[str, Rpc]:
        extra = Rpc(AUDITOR_ROLES, pb.GetLedgerRequest, NodeServicer.rpcs()["GetLedger"].handle)
        return {**super().rpcs(), "DeleteLedger": extra}


class QueryParsesPreviewRequests(NodeServicer):
    @classmethod
    def rpcs(cls) -> Mapping[str, Rpc]:
        rpcs = dict(super().rpcs())
        rpcs["Query"] = Rpc(rpcs["Query"].roles, pb.PreviewRequest, rpcs["Query"].handle)
        return rpcs


def test_a_servicer_missing_a_handler_is_refused() -> None:
    with pytest.raises(ServiceContractError, match=r"no handler for GetLedger"):
        MissingGetLedger.check_contract()


def test_a_servicer_with_a_handler_for_an_undeclared_rpc_is_refused() -> None:
    with pytest.raises(
        ServiceContractError, match=r"handlers for rpcs the service does not declare: DeleteLedger"
    ):
        ExtraDeleteLedger.check_contract()


def test_a_handler_parsing_the_wrong_request_type_is_refused() -> None:
    with pytest.raises(
        ServiceContractError,
        match=r"Query parses npcs\.v1\.PreviewRequest, but the service declares "
        r"npcs\.v1\.QueryRequest",
    ):
        QueryParsesPreviewRequests.check_contract()


def test_the_check_runs_when_a_servicer_is_built() -> None:
    """Construction checks before it touches the engine or settings, so none are needed."""
    with pytest.raises(ServiceContractError, match="GetLedger"):
        MissingGetLedger(engine=None, settings=None)  # type: ignore[arg-type]
