"""Auditing nodes' privacy-budget ledgers from outside (`npcs audit`).

For each node, as an auditor identity over mTLS, using only what the node serves and
what the auditor remembered from earlier audits:

1. Describe: the node's ledger key must be the one pinned in partnership.toml.
2. GetCheckpoint: the latest checkpoint must carry a valid signature of that key.
3. GetLedger: every entry, in pages; each entry's structured fields must be exactly its
   leaf data, and the recomputed RFC 6962 root over all leaves must equal the signed
   root. If it does not, consistency proofs locate the first entry that differs.
4. The checkpoint remembered from the previous audit must be a prefix of today's ledger
   (same root over the first `size` entries, and the node's consistency proof must
   verify): a smaller ledger was truncated, a different prefix was rewritten or forked.
5. Every charge must be authorised and coherent: the analyst's signed request verifies
   and names this node, the query id and the query hash; the recorded release names the
   same query and cost. Spent budget per dataset (the sum of charges) must lie within
   the policy totals the node publishes.

A node that passes has its checkpoint remembered (`memory`), so the next audit proves
the ledger only grew. A node that fails keeps its last good one.

Modules: `report` (the report's models), `session` (the auditor's set-up), `run`
(auditing nodes), `ledger_checks` and `charge_checks` (the checks), `findings` (what
the checks collect), `memory` (the auditor's remembered checkpoints), `render`
(terminal text, markdown and JSON).
"""
