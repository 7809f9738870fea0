"""CSV uploads as HQ sends them (targets now, imports next): UTF-8 with or without a
byte-order mark, a header naming the contract's fields, one record per line. A bad
record is reported by its line and field and never sinks the others; a bad file (not
UTF-8, no header, a required column missing) is refused whole."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from msgspec import Struct

from core.errors import InvalidInput

T = TypeVar("T")
MAX_FIELD = 1_000  # characters; a longer cell is a broken file, not a value


class Rejected(Struct):
    line: int  # the file's line, the header being line 1
    field: str
    message: str


class BadValue(ValueError):
    """A cell that cannot be read: which field, and why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Record:
    line: int
    values: dict[str, str]
    too_long: bool = False

    def text(self, name: str, *, required: bool = True, max_length: int = 100) -> str:
        value = self.values.get(name, "").strip()
        if required and not value:
            raise BadValue(name, "is required")
        if len(value) > max_length:
            raise BadValue(name, f"must be at most {max_length} characters")
        return value

    def whole(self, name: str, *, minimum: int = 0, maximum: int = 10**12) -> int:
        value = self.text(name)
        try:
            number = int(value)
        except ValueError:
            raise BadValue(name, "must be a whole number") from None
        if not minimum <= number <= maximum:
            raise BadValue(name, f"must be from {minimum} to {maximum}")
        return number

    def optional(self, name: str, max_length: int = 100) -> str | None:
        return self.text(name, required=False, max_length=max_length) or None

    def number(self, name: str, minimum: float, maximum: float) -> float | None:
        value = self.optional(name, 32)
        if value is None:
            return None
        try:
            number = float(value)
        except ValueError:
            raise BadValue(name, "must be a number") from None
        if not minimum <= number <= maximum:
            raise BadValue(name, f"must be from {minimum:g} to {maximum:g}")
        return number

    def boolean(self, name: str, default: bool) -> bool:
        value = (self.optional(name, 8) or "").lower()
        if not value:
            return default
        if value in {"true", "1", "yes", "y", "是"}:
            return True
        if value in {"false", "0", "no", "n", "否"}:
            return False
        raise BadValue(name, "must be true or false")

    def day(self, name: str) -> date | None:
        value = self.optional(name, 10)
        if value is None:
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise BadValue(name, "must be a date YYYY-MM-DD") from None

    def instant(self, name: str, required: bool = True) -> datetime | None:
        """A time with or without an offset (without: the caller reads it in the
        store's zone)."""
        value = self.text(name, required=required, max_length=40)
        if not value:
            return None
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise BadValue(name, "must be a time like 2026-11-23T10:15:00+08:00") from None


def read_csv(
    body: bytes, required: Sequence[str], optional: Sequence[str] = ()
) -> Iterator[Record]:
    """The records of an uploaded file, each with its line number; blank lines skipped."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput.on("body", f"is not UTF-8 (byte {exc.start + 1})") from None
    return read_csv_lines(io.StringIO(text, newline=""), required, optional)


def read_csv_lines(
    lines: Iterable[str], required: Sequence[str], optional: Sequence[str] = ()
) -> Iterator[Record]:
    """As ``read_csv``, from text read as it goes (a file of millions of lines opened
    with ``encoding="utf-8-sig", newline=""``)."""
    reader = csv.reader(lines)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise InvalidInput.on("body", f"is empty: give a header ({','.join(required)})") from None
    except csv.Error as exc:
        raise InvalidInput.on("header", str(exc)) from None
    missing = [name for name in required if name not in header]
    if missing:
        raise InvalidInput.on("header", f"has no column {', '.join(missing)}")
    unknown = [h for h in header if h and h not in (*required, *optional)]
    if unknown:
        raise InvalidInput.on("header", f"unknown column {', '.join(unknown)}")
    return _records(reader, header)


def _records(reader: Any, header: list[str]) -> Iterator[Record]:
    line = reader.line_num
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InvalidInput.on(f"line {reader.line_num}", str(exc)) from None
        start, line = line + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        # A NUL is no character of any value (PostgreSQL refuses it in text).
        if any(len(cell) > MAX_FIELD or "\x00" in cell for cell in row):
            yield Record(start, {}, too_long=True)
            continue
        yield Record(start, dict(zip(header, row, strict=False)))


def each_record(
    records: Iterator[Record], read: Callable[[Record], T], rejected: list[Rejected]
) -> list[tuple[int, T]]:
    """Each record read by ``read``; one that cannot be read goes to ``rejected``."""
    found = []
    for record in records:
        try:
            if record.too_long:
                raise BadValue("line", f"has a cell longer than {MAX_FIELD} characters or a NUL")
            found.append((record.line, read(record)))
        except BadValue as exc:
            rejected.append(Rejected(record.line, exc.field, exc.message))
    return found
