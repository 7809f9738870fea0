"""League tables and contest standings (``/v1``, any signed-in person), and HQ's side
of incentives (``/hq/v1``): weights, bonus rates, contests, closing months, bonus
statements and the ledger behind them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

import msgspec
from litestar import Controller, MediaType, Request, Response, get, post, put
from litestar.params import JSONBody, PathParameter, QueryParameter

from advisor_api.security import requires_role
from incentives import boards, contests, services, statements
from incentives.queries import MAX_LIMIT
from incentives.schemas import (
    AdvisorTable,
    BonusRatesIn,
    BonusRatesOut,
    BonusStatementOut,
    ContestIn,
    ContestOut,
    LedgerPage,
    PairOut,
    ScoreWeightsIO,
    Standings,
    StoreTable,
)
from members import clock
from members.accounts import Principal
from members.errors import InvalidInput
from members.periods import Period, month_of, parse_period

ScopeQuery = Annotated[
    str, QueryParameter(name="scope", min_length=1, max_length=60, pattern=r"^[^\x00-\x1f\x7f]*$")
]
PeriodQuery = Annotated[str | None, QueryParameter(max_length=10)]
LimitQuery = Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)]
MonthPath = Annotated[str, PathParameter(pattern=r"^\d{4}-\d{2}$")]
CodeQuery = Annotated[str, QueryParameter(pattern=r"^[A-Za-z0-9_-]{1,16}$")]


def _period(principal: Principal, text: str | None) -> Period:
    """The period asked for; by default the caller's current month."""
    if text is None:
        return month_of(clock.today(clock.zone(principal.timezone or clock.DEFAULT_TIMEZONE)))
    try:
        return parse_period(text)
    except ValueError as exc:
        raise InvalidInput.on("period", str(exc)) from None


def _weights(given: ScoreWeightsIO | None) -> dict[str, Decimal]:
    if given is None:
        return {}
    return {k: v for k, v in msgspec.structs.asdict(given).items() if v is not None}


class LeaderboardController(Controller):
    path = "/v1"
    tags = ["League tables"]
    guards = [requires_role("advisor", "owner", "hq")]

    @get("/leaderboards/advisors", summary="Advisors ranked over a period (促销员先锋赛)")
    async def advisors(
        self,
        request: Request[Principal, Any, Any],
        scope_text: ScopeQuery = "national",
        period: PeriodQuery = None,
        limit: LimitQuery = 50,
    ) -> AdvisorTable:
        who = request.user
        return await boards.advisor_table(who, scope_text, _period(who, period), limit)

    @get("/leaderboards/stores", summary="Stores ranked over a period (门店销售竞赛)")
    async def stores(
        self,
        request: Request[Principal, Any, Any],
        scope_text: ScopeQuery = "national",
        period: PeriodQuery = None,
        limit: LimitQuery = 50,
        per_advisor: Annotated[bool, QueryParameter()] = False,
    ) -> StoreTable:
        who = request.user
        return await boards.store_table(who, scope_text, _period(who, period), limit, per_advisor)

    @get("/contests/{contest_id:int}/standings", summary="A league's ranking or a PK's pairs")
    async def standings(
        self,
        request: Request[Principal, Any, Any],
        contest_id: Annotated[int, PathParameter(ge=1, le=2**31 - 1)],
        limit: LimitQuery = 50,
    ) -> Standings:
        return await boards.standings(request.user, contest_id, limit)


class HqIncentivesController(Controller):
    path = "/hq/v1"
    tags = ["HQ"]
    guards = [requires_role("hq")]

    @get("/score-weights", summary="The default weights of the league tables")
    async def get_weights(self) -> dict[str, Decimal]:
        return boards.weights_out(await services.load_weights())

    @put("/score-weights", summary="Change the default weights; every table is re-scored")
    async def put_weights(self, data: JSONBody[ScoreWeightsIO]) -> dict[str, Decimal]:
        weights = services.Weights.from_decimals(_weights(data), await services.load_weights())
        return boards.weights_out(await services.set_weights(weights))

    @get("/bonus-rates", summary="The bonus rates in force for a month")
    async def get_rates(self, period: PeriodQuery = None) -> BonusRatesOut:
        month = services.month_or_error(
            period or month_of(clock.today(clock.zone(clock.DEFAULT_TIMEZONE))).name
        )
        return boards.rates_out(await services.rates_for(month))

    @put("/bonus-rates", summary="Bonus rates from a month on")
    async def put_rates(self, data: JSONBody[BonusRatesIn]) -> BonusRatesOut:
        month = services.month_or_error(data.effective_from, "effective_from")
        return boards.rates_out(
            await services.set_rates(
                services.Rates(
                    month,
                    _fen(data.per_new_member, "per_new_member"),
                    _fen(data.per_1000_points, "per_1000_points"),
                    _gate(data.completion_gate),
                )
            )
        )

    @post("/contests", status_code=201, summary="A league or PK contest over a window")
    async def create_contest(self, data: JSONBody[ContestIn]) -> ContestOut:
        contest, pairs, unpaired = await contests.create_contest(
            data.name,
            data.kind,
            data.subject,
            data.scope,
            data.starts_on,
            data.ends_on,
            _weights(data.weights),
            data.pairs,
        )
        return ContestOut(
            contest_id=contest.id,
            name=contest.name,
            kind=contest.kind,
            subject=contest.subject,
            scope=contest.scope,
            starts_on=contest.starts_on,
            ends_on=contest.ends_on,
            weights=boards.weights_out(contest.weights),
            pairs=[PairOut(a, b) for a, b in pairs] if contest.kind == "pk" else None,
            unpaired=unpaired if contest.kind == "pk" else None,
        )

    @post("/periods/{month:str}/close", status_code=200, summary="Freeze a month's statements")
    async def close(self, month: MonthPath) -> BonusStatementOut:
        _, statement = await statements.close_month(services.month_or_error(month, "month"))
        return boards.statement_out(statement)

    @get(
        "/bonus-statements",
        summary="A month's bonus statement: JSON, or CSV with Accept: text/csv",
        media_type=MediaType.JSON,
    )
    async def bonus_statements(
        self, request: Request[Principal, Any, Any], period: Annotated[str, QueryParameter()]
    ) -> Response[Any]:
        statement = await statements.statement(services.month_or_error(period))
        if request.accept.best_match(["application/json", "text/csv"]) == "text/csv":
            return Response(
                statements.to_csv(statement),
                media_type="text/csv; charset=utf-8",
                headers={
                    "Content-Disposition": f'attachment; filename="bonus-{statement.month}.csv"'
                },
            )
        return Response(boards.statement_out(statement), media_type=MediaType.JSON)

    @get("/score-ledger", summary="The ledger rows behind a statement line")
    async def score_ledger(
        self,
        advisor: CodeQuery,
        booked_month: Annotated[str, QueryParameter(pattern=r"^\d{4}-\d{2}$")],
        original_date: Annotated[date | None, QueryParameter()] = None,
        after: Annotated[int, QueryParameter(ge=0, le=2**62)] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 200,
    ) -> LedgerPage:
        month = services.month_or_error(booked_month, "booked_month")
        return await boards.ledger_page(advisor, month, original_date, after, limit)


def _fen(value: Decimal, field: str) -> int:
    if not value.is_finite() or value < 0 or value > 1_000_000:
        raise InvalidInput.on(field, "must be from 0 to 1000000 yuan")
    fen = value * 100
    if fen != fen.to_integral_value():
        raise InvalidInput.on(field, "is finer than a fen")
    return int(fen)


def _gate(value: Decimal | None) -> int | None:
    if value is None:
        return None
    if not value.is_finite() or not 0 <= value <= 1:
        raise InvalidInput.on("completion_gate", "must be from 0 to 1")
    bp = value * 10_000
    if bp != bp.to_integral_value():
        raise InvalidInput.on("completion_gate", "has more than four decimal places")
    return int(bp)
