"""The interval options `npcs query` and `npcs results show` share (post-processing)."""

from __future__ import annotations

import click

from coordinator.intervals import INTERVAL_KINDS, POISSON_STATISTICS

interval_option = click.option(
    "--interval",
    type=click.Choice(INTERVAL_KINDS),
    default="dp",
    show_default=True,
    help="What intervals cover: dp = the DP noise (the jurisdiction's actual count); "
    "dp+poisson = also Poisson variation (the underlying rate; counts only).",
)
small_area_option = click.option(
    "--small-area",
    is_flag=True,
    help="Add each node's small-area rate: shrunk toward the partnership rate by "
    "empirical Bayes (counts with rates; implies --rate).",
)


def check_post_processing(statistic: str, interval: str, small_area: bool) -> None:
    """Refuse options that cannot apply to this statistic, before any node is asked."""
    if statistic in POISSON_STATISTICS:
        return
    if interval == "dp+poisson":
        raise click.UsageError(
            f"--interval dp+poisson applies to count and histogram, not {statistic} "
            "(no Poisson model for it); nothing was asked of any node"
        )
    if small_area:
        raise click.UsageError(
            f"--small-area shrinks rates of counts (count, histogram), not a {statistic}; "
            "nothing was asked of any node"
        )
