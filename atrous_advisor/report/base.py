"""The one base of every result model: what ``--json`` of every command is made of."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

IntPair = tuple[int, int]
FloatPair = tuple[float, float]


class ResultModel(BaseModel):
    """Frozen (a result is a record, not a workspace), strict about keys (a typo is an error, not a silently
    dropped field), and built lazily: ``defer_build`` makes a command pay only for the schemas of the results
    it actually produces, which keeps ``rate`` and ``lint`` quick to start."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)
