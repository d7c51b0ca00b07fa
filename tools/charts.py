"""Chart data a tool result may carry: the numbers and labels only; chat surfaces draw the PNG."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

ChartKind = Literal["funnel", "pipeline_by_stage", "forecast_vs_target", "aging"]


class Series(BaseModel):
    name: str = Field(description="legend label, in the reader's language")
    values: list[float]


class Chart(BaseModel):
    """One picture: categories along one axis, one or more series of numbers over them."""

    kind: ChartKind
    title: str
    categories: list[str]
    series: list[Series]
    unit: str = Field("", description="what the numbers are in, e.g. CNY or 'deals'")
    locale: str = "en"
