"""The insight pages' tables: one description of each, which the page shows (sorted
by the column asked for, a page's worth of rows) and the CSV download writes whole
(UTF-8 with a byte-order mark, so that Excel shows the Chinese)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import quote, urlencode

from advisor_api.web.charts import percent_text

Kind = Literal["text", "int", "yuan", "share", "change"]  # change: a rank's move
Sorted = Literal["ascending", "descending"] | None  # a header's aria-sort
ROWS_SHOWN = 50  # a region's thousands of stores: the page shows the top, the CSV all


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    kind: Kind = "int"

    @property
    def numeric(self) -> bool:
        return self.kind != "text"


@dataclass(frozen=True, slots=True)
class Header:
    column: Column
    href: str | None  # the link that sorts by it; None: the table is not sortable
    sorted: Sorted


@dataclass(slots=True)
class Table:
    """``rows`` hold each column's value by key (None: no figure); under ``"_href"``
    where the ``link`` column's cell leads, and under ``"_bars"`` a target line's
    progress bars."""

    name: str  # the CSV's ?table=
    title: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    sort: str | None = None
    descending: bool = False
    sortable: bool = True
    param: str = ""  # the query's sort and dir are {param}sort and {param}dir
    link: str = "key"  # the column whose cell links to the row's "_href"

    def column(self, key: str | None) -> Column | None:
        return next((c for c in self.columns if c.key == key), None)

    def sorted_by(self, key: str | None, direction: str | None) -> Table:
        """Sorted by ``key`` (ignored unless it is a column), figures missing last."""
        column = self.column(key) if self.sortable else None
        if column is None:
            return self
        self.sort, self.descending = column.key, direction != "asc"
        if column.kind == "text":
            self.descending = direction == "desc"
        present = [r for r in self.rows if r.get(column.key) is not None]
        missing = [r for r in self.rows if r.get(column.key) is None]
        present.sort(key=lambda r: _sort_value(r[column.key], column.kind), reverse=self.descending)
        self.rows = present + missing
        return self

    def headers(self, query: Mapping[str, str]) -> list[Header]:
        """Each column's header: a link sorting by it (numbers biggest first, text A to Z;
        the column already sorted by turns round), keeping the page's other choices."""
        found = []
        for column in self.columns:
            if not self.sortable:
                found.append(Header(column, None, None))
                continue
            on = column.key == self.sort
            first = "desc" if column.numeric else "asc"
            direction = ("asc" if self.descending else "desc") if on else first
            sort = {f"{self.param}sort": column.key, f"{self.param}dir": direction}
            href = "?" + urlencode({**query, **sort})
            state: Sorted = None
            if on:
                state = "descending" if self.descending else "ascending"
            found.append(Header(column, href + f"#{self.name}", state))
        return found

    def header(self, key: str, query: Mapping[str, str]) -> Header:
        return next(h for h in self.headers(query) if h.column.key == key)

    @property
    def shown(self) -> list[dict[str, Any]]:
        return self.rows[:ROWS_SHOWN]

    def cells(self, row: Mapping[str, Any]) -> list[str]:
        return [cell_text(row.get(c.key), c.kind) for c in self.columns]

    def csv(self) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow([c.label for c in self.columns])
        for row in self.rows:
            writer.writerow([_csv_value(row.get(c.key), c.kind) for c in self.columns])
        return ("\ufeff" + out.getvalue()).encode("utf-8")


def _sort_value(value: Any, kind: Kind) -> Any:
    if kind == "text":
        return str(value)
    return Decimal(str(value))


def cell_text(value: Any, kind: Kind) -> str:
    if value is None:
        return "新" if kind == "change" else "–"
    if kind == "share":
        return percent_text(str(value))
    if kind == "int":
        return f"{int(value):,}"
    if kind == "change":
        return "▲" + str(value) if value > 0 else "▼" + str(-value) if value < 0 else "–"
    if kind == "yuan":
        return yuan_text(value)
    return str(value)


def yuan_text(value: Any) -> str:
    """An amount as people read it: 23,381.50."""
    return "–" if value is None else f"{Decimal(str(value)):,.2f}"


def _csv_value(value: Any, kind: Kind) -> Any:
    """Figures as the API writes them (a ratio to four places, yuan to the fen); a
    name that starts like a formula is quoted, or Excel would run it."""
    if value is None:
        return ""
    if kind == "text":
        text = str(value)
        return "'" + text if text[:1] in ("=", "+", "-", "@") else text
    return value


def attachment(name: str, plain: str) -> str:
    """A download's Content-Disposition: ``name`` for browsers that read RFC 6266's
    ``filename*`` (all of today's), the ASCII ``plain`` for any other."""
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name)}"
