"""The (epsilon, delta)-DP equivalent of a rho-zCDP cost, from OpenDP's conversion map.

The ledger records it beside every charge for readers who think in epsilon; budgets are
kept and compared in exact rho units (privacy/budget.py). Importing this module is cheap:
OpenDP is imported only inside the function.
"""

from __future__ import annotations

import functools

from privacy.budget import units_to_rho


@functools.lru_cache(maxsize=4096)
def epsilon_for_rho_units(cost_units: int, delta: str) -> str:
    """The epsilon at `delta` of a rho-zCDP cost, from OpenDP's zCDP -> approx-DP map.

    Built as OpenDP's Gaussian mechanism with sensitivity 1 and the scale whose zCDP
    cost is rho, converted by `make_zCDP_to_approxDP` and fixed at delta.
    """
    if cost_units == 0:
        return "0"
    from privacy.opendp_setup import opendp

    dp = opendp()
    rho = float(units_to_rho(cost_units))
    scale = (1.0 / (2.0 * rho)) ** 0.5
    gaussian = dp.m.make_gaussian(
        dp.atom_domain(T=float, nan=False), dp.absolute_distance(T=float), scale
    )
    approx = dp.c.make_fix_delta(dp.c.make_zCDP_to_approxDP(gaussian), float(delta))
    epsilon, _ = approx.map(1.0)
    return repr(float(epsilon))
