"""Budgets as people write them: ``"90s"``, ``"15m"``, ``"1h30m"``, ``"2h"`` or seconds, and back."""

from __future__ import annotations

import math
import re
from typing import Union

from ..errors import UsageError

_DURATION = re.compile(r"^(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?$")


def parse_duration(value: Union[str, int, float], what: str = "time budget") -> float:
    """Seconds in a duration written as ``"90s"``, ``"15m"``, ``"1h30m"``, ``"2h"`` or plain seconds.

    Raises ``ValueError`` naming the bad value when it is unparsable or not positive.
    """
    if isinstance(value, bool):
        raise UsageError(f"{what} {value!r} is not a duration: use seconds (5400) or units like '90s', '15m', '1h30m'")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip().lower().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            match = _DURATION.match(text)
            if not text or match is None or not any(match.groupdict().values()):
                raise UsageError(
                    f"{what} {value!r} is not a duration: use seconds (5400) or units like '90s', '15m', '1h30m'"
                ) from None
            parts = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
            seconds = parts["h"] * 3600 + parts["m"] * 60 + parts["s"]
    if not math.isfinite(seconds) or seconds <= 0:
        raise UsageError(f"{what} {value!r} must be positive: use e.g. '30s', '15m' or '2h'")
    return seconds


def format_duration(seconds: float) -> str:
    """``3725.0`` -> ``"1h02m05s"``; the inverse of :func:`parse_duration` up to rounding."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"
