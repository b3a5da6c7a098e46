"""The chart options `npcs query` and `npcs results show` share."""

from __future__ import annotations

import click

y_scale_option = click.option(
    "--y-scale",
    type=click.Choice(["auto", "shared", "free"]),
    default="auto",
    show_default=True,
    help="Chart panels' y-scale: shared where values are comparable (rates, means, "
    "quantiles) and free for counts and sums (auto), or force either.",
)
