"""Path and query parameters as the API states them in its schema: the same shape
wherever a period, a month, a code or an id appears, so the document and the server
agree on what is well formed."""

from __future__ import annotations

from typing import Annotated

from litestar.params import PathParameter, QueryParameter

from core.periods import MONTH_PATTERN, PERIOD_PATTERN

CODE = r"^[A-Za-z0-9_-]{1,16}$"
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"

PeriodQuery = Annotated[
    str | None,
    QueryParameter(
        max_length=10,
        pattern=PERIOD_PATTERN,
        description="a month (2026-11), an ISO week (2026-W47) or a day (2026-11-23);"
        " by default this month",
    ),
]
MonthQuery = Annotated[str, QueryParameter(max_length=7, pattern=MONTH_PATTERN)]
MonthPath = Annotated[str, PathParameter(max_length=7, pattern=MONTH_PATTERN)]
CodePath = Annotated[str, PathParameter(pattern=CODE)]
CodeQuery = Annotated[str, QueryParameter(pattern=CODE)]
# A channel's order id, as the channel gave it (no slash: it is a path segment).
OrderIdPath = Annotated[
    str, PathParameter(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f/]+$")
]
SkuPath = Annotated[str, PathParameter(pattern=r"^[A-Za-z0-9_.-]{1,32}$")]
# Ids stay within what a JSON number carries exactly (and JavaScript's safe integers),
# so the bound in the schema is the bound the server keeps.
MAX_ID = 2**53 - 1
Id = Annotated[int, PathParameter(ge=1, le=MAX_ID)]
SmallId = Annotated[int, PathParameter(ge=1, le=2**31 - 1)]
Offset = Annotated[int, QueryParameter(ge=0, le=1_000_000)]
Filter = Annotated[str | None, QueryParameter(min_length=1, max_length=50, pattern=PRINTABLE)]
# A page's search box: whatever was typed (the search says what it could not read).
SearchText = Annotated[str | None, QueryParameter(max_length=200)]
