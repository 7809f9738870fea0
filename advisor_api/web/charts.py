"""The pages' charts and progress bars, drawn on the server: the geometry is worked
out here as plain shapes (a ``Chart``), and ``templates/charts.html`` turns any
``Chart`` into SVG, so the owner's 30 days, the playbook funnel and the six-month
trend read alike and no page needs a script or a chart library.

Each chart keeps a small view box (about 300 units wide) and its page keeps it in a
box of about that many pixels, so that its 11-unit labels stay readable from a 390 px
phone to a 1280 px laptop."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal

from incentives.schemas import TargetRow

INK, MUTED = "#222", "#777"
RED, GREEN, BLUE, ORANGE = "#c8102e", "#0a7d32", "#2a6fdb", "#e08a00"


@dataclass(frozen=True, slots=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    fill: str
    title: str
    css: str = "bar"


@dataclass(frozen=True, slots=True)
class Text:
    x: float
    y: float
    text: str
    anchor: str = "middle"
    fill: str = INK


@dataclass(frozen=True, slots=True)
class Line:
    points: str
    stroke: str


@dataclass(frozen=True, slots=True)
class Dot:
    x: float
    y: float
    fill: str
    title: str


@dataclass(slots=True)
class Chart:
    """Shapes in a ``width`` × ``height`` view box; ``label`` is what a screen reader
    says; the legend is drawn under the chart as text."""

    width: float
    height: float
    label: str
    css: str = ""
    # Horizontal rules from ``rule_from`` across, each with its y-axis label.
    grid: list[Text] = field(default_factory=list)
    rule_from: float = 0
    rects: list[Rect] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    dots: list[Dot] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)  # (colour, label)
    # Stretched to the page's width at a fixed height: only for a chart without text,
    # which would stretch with it.
    stretch: bool = False


def compact(n: int) -> str:
    """A count short enough for a chart label: 12.3万 rather than 123,456."""
    for unit, size in (("亿", 10**8), ("万", 10**4)):
        if abs(n) >= size:
            return f"{Decimal(n) / size:.1f}".removesuffix(".0") + unit
    return str(n)


def percent(ratio: str | None) -> int | None:
    """A four-place ratio as whole percent, rounded down: 100% only when it is met."""
    if ratio is None:
        return None
    return int((Decimal(ratio) * 100).to_integral_value(ROUND_DOWN))


def percent_text(ratio: str | None) -> str:
    """A ratio for a table cell or a label: 86.5%, or – without one."""
    if ratio is None:
        return "–"
    return f"{(Decimal(ratio) * 100).quantize(Decimal('0.1'), ROUND_DOWN)}%"


@dataclass(frozen=True, slots=True)
class Scale:
    """Values 0..top onto the y from ``bottom`` up to ``bottom - height``."""

    top: float
    bottom: float
    height: float

    def __call__(self, value: float) -> float:
        return self.bottom - value * self.height / (self.top or 1)


def polyline(values: Sequence[float], x0: float, step: float, y_of: Scale) -> str:
    return " ".join(f"{x0 + i * step:.1f},{y_of(v):.1f}" for i, v in enumerate(values))


# --- progress bars --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Progress:
    """A labelled bar "实际 / 目标(xx%)": the fill stops at 100%, the text does not."""

    label: str
    actual: int
    target: int | None
    percent: int | None
    note: str = ""

    @property
    def width(self) -> int:
        return min(self.percent or 0, 100)

    @property
    def met(self) -> bool:
        return self.percent is not None and self.percent >= 100

    @property
    def text(self) -> str:
        if self.target is None:
            return f"{self.actual:,} / 未设目标"
        return f"{self.actual:,} / {self.target:,}({self.percent}%)"

    @property
    def full_text(self) -> str:
        if self.target is None:
            return f"实际 {self.actual:,} / 未设目标"
        return f"实际 {self.actual:,} / 目标 {self.target:,}({self.percent}%)"


def progress(
    label: str, actual: int, target: int | None, attainment: str | None, note: str = ""
) -> Progress:
    return Progress(label, actual, target, percent(attainment), note)


def target_bars(row: TargetRow) -> tuple[Progress, Progress]:
    """A target line's new members and points, as two bars."""
    note = "按门店均分" if row.derived else ""
    target = row.target
    return (
        progress(
            "新会员",
            row.actual.new_members,
            target.new_members if target else None,
            row.attainment.new_members,
            note,
        ),
        progress(
            "积分",
            row.actual.points,
            target.points if target else None,
            row.attainment.points,
            note,
        ),
    )


# --- charts -------------------------------------------------------------------


def day_chart(days: Sequence[str], points: Sequence[int], joined: Sequence[int]) -> Chart:
    """The owner's last days: points as a line, new members as bars along the foot."""
    width, height, foot = 300.0, 100.0, 90.0
    y_of = Scale(max(points) or 1, foot, 80)
    step = width / max(len(days) - 1, 1)
    chart = Chart(
        width,
        height,
        f"{days[0]} 至 {days[-1]}:积分 {sum(points)},新会员 {sum(joined)}",
        css="days",
        stretch=True,
        lines=[Line(polyline(points, 0, step, y_of), RED)],
        legend=[(RED, "积分"), (GREEN, "新会员")],
    )
    per_member = min(6.0, 40 / (max(joined) or 1))
    for i, n in enumerate(joined):
        if n:
            tall = n * per_member
            chart.rects.append(
                Rect(i * step - 2, foot - tall, 4, tall, GREEN, f"{days[i]}:{n} 位新会员")
            )
    return chart


FUNNEL_STAGES = (
    ("made", "生成"),
    ("due", "应跟进"),
    ("contacted", "已跟进"),
    ("reached", "已联系上"),
    ("done", "完成"),
    ("converted", "转化"),
)


def funnel(title: str, counts: dict[str, int]) -> Chart:
    """One task kind's funnel: a bar a stage, each as long as its share of the widest,
    with the count and (after 应跟进) its share of the tasks due."""
    label_w, number_w, bar_h, gap = 58.0, 74.0, 14.0, 6.0
    span = 300 - label_w - number_w
    widest = max(counts[stage] for stage, _ in FUNNEL_STAGES) or 1
    due = counts["due"]
    chart = Chart(300, len(FUNNEL_STAGES) * (bar_h + gap), "", css="funnel")
    spoken = []
    for i, (stage, name) in enumerate(FUNNEL_STAGES):
        n, y = counts[stage], i * (bar_h + gap)
        of_due = f"({n * 100 // due}%)" if due and i > 1 else ""
        chart.texts.append(Text(label_w - 6, y + bar_h - 3, name, "end"))
        chart.rects.append(
            Rect(label_w, y, max(span * n / widest, 1), bar_h, BLUE if i < 5 else GREEN, name)
        )
        chart.texts.append(
            Text(label_w + span + 4, y + bar_h - 3, f"{compact(n)}{of_due}", "start", MUTED)
        )
        spoken.append(f"{name} {n}")
    chart.label = f"{title}:" + ",".join(spoken)
    return chart


def month_label(month: str) -> str:
    return f"{int(month[5:7])}月"


def month_bars(months: Sequence[str], series: Sequence[tuple[str, str, Sequence[int]]]) -> Chart:
    """Counts by month, a bar for each series side by side, each bar labelled."""
    width, left, foot, tall = 340.0, 8.0, 150.0, 118.0
    group = (width - left) / len(months)
    bar_w = min(22.0, (group - 10) / len(series))
    y_of = Scale(max((v for _, _, values in series for v in values), default=0) or 1, foot, tall)
    chart = Chart(width, foot + 22, "", css="months", legend=[(c, name) for name, c, _ in series])
    for i, month in enumerate(months):
        x0 = left + i * group + (group - bar_w * len(series)) / 2
        chart.texts.append(Text(left + (i + 0.5) * group, foot + 16, month_label(month)))
        for j, (name, colour, values) in enumerate(series):
            x, y = x0 + j * bar_w, y_of(values[i])
            title = f"{month} {name}:{values[i]:,}"
            chart.rects.append(Rect(x + 1, y, bar_w - 2, foot - y, colour, title))
            chart.texts.append(Text(x + bar_w / 2, y - 3, compact(values[i]), fill=MUTED))
    chart.label = ";".join(
        f"{name}:" + ",".join(f"{month_label(m)} {v}" for m, v in zip(months, values, strict=True))
        for name, _, values in series
    )
    chart.grid, chart.rule_from = [Text(0, foot, "")], left
    return chart


def month_shares(
    months: Sequence[str], series: Sequence[tuple[str, str, Sequence[str | None]]]
) -> Chart:
    """Ratios by month on a 0–100% scale, a line for each series; a month without the
    ratio (nothing to divide) has no dot, and the line joins over it."""
    width, left, right, foot, tall = 340.0, 34.0, 22.0, 150.0, 120.0
    step = (width - left - 8 - right) / max(len(months) - 1, 1)
    y_of = Scale(100, foot, tall)
    chart = Chart(width, foot + 22, "", css="shares", legend=[(c, name) for name, c, _ in series])
    chart.grid = [Text(left - 4, y_of(p), f"{p}%", "end", MUTED) for p in (0, 50, 100)]
    chart.rule_from = left
    for i, month in enumerate(months):
        chart.texts.append(Text(left + 8 + i * step, foot + 16, month_label(month)))
    # At each month the highest value is labelled above its dot and the others below,
    # so that two close values do not print over each other.
    highest = [
        max((percent(r) or 0 for _, _, ratios in series if (r := ratios[i]) is not None), default=0)
        for i in range(len(months))
    ]
    spoken, labelled_above = [], set()
    for name, colour, ratios in series:
        shown = [(i, percent(r) or 0) for i, r in enumerate(ratios) if r is not None]
        xy = [(left + 8 + i * step, y_of(min(p, 100))) for i, p in shown]
        chart.lines.append(Line(" ".join(f"{x:.1f},{y:.1f}" for x, y in xy), colour))
        for (i, p), (x, y) in zip(shown, xy, strict=True):
            chart.dots.append(Dot(x, y, colour, f"{months[i]} {name}:{p}%"))
            above = (p == highest[i] and i not in labelled_above) or y + 16 > foot
            labelled_above |= {i} if above else set()
            chart.texts.append(Text(x, y - 6 if above else y + 15, f"{p}%", fill=colour))
        said = (f"{month_label(m)} {percent_text(r)}" for m, r in zip(months, ratios, strict=True))
        spoken.append(f"{name}:" + ",".join(said))
    chart.label = ";".join(spoken)
    return chart
