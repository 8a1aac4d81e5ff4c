"""Per-day check verdicts of a run, read back from its evaluations (`range_checks`)."""

from __future__ import annotations

from fraud_assets.lib.range_checks import DayVerdict, day_verdicts


def verdicts(result) -> dict[tuple[str, str], DayVerdict]:
    """(check name, ISO day) -> that day's verdict, over every check evaluation of `result`."""
    return {
        (e.check_name, day): verdict
        for e in result.get_asset_check_evaluations()
        for day, verdict in day_verdicts(e).items()
    }
