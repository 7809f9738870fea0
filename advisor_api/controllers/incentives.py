"""League tables and contest standings (``/v1``, any signed-in person), and HQ's side
of incentives (``/hq/v1``): weights, bonus rates, contests, closing months, bonus
statements and the ledger behind them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from litestar import Controller, MediaType, Request, Response, get, post, put
from litestar.params import JSONBody, PathParameter, QueryParameter

from advisor_api.params import MAX_ID, CodeQuery, MonthPath, MonthQuery, PeriodQuery
from advisor_api.security import requires_role
from core import clock
from core.periods import Period, month_of, month_or_error, period_or_error
from incentives import boards, contests, rules, statements
from incentives.queries import MAX_LIMIT
from incentives.schemas import (
    AdvisorTable,
    BonusRatesIn,
    BonusRatesOut,
    BonusStatementOut,
    ContestIn,
    ContestOut,
    LedgerPage,
    ScoreWeightsIO,
    Standings,
    StoreTable,
)
from members.accounts import Principal

ScopeQuery = Annotated[
    str | None,
    QueryParameter(
        name="scope",
        min_length=1,
        max_length=60,
        pattern=r"^[^\x00-\x1f\x7f]*$",
        description="national, region:NAME or store:CODE; by default national (a regional"
        " login: its region)",
    ),
]
LimitQuery = Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)]


def _period(principal: Principal, text: str | None) -> Period:
    """The period asked for; by default the caller's current month."""
    return period_or_error(text, clock.zone(principal.timezone or clock.DEFAULT_TIMEZONE))


class LeaderboardController(Controller):
    path = "/v1"
    tags = ["League tables"]
    guards = [requires_role("advisor", "owner", "region", "hq")]

    @get(
        "/leaderboards/advisors",
        summary="Advisors ranked over a period (促销员先锋赛)",
        opt={"problems": (422,)},
    )
    async def advisors(
        self,
        request: Request[Principal, Any, Any],
        scope_text: ScopeQuery = None,
        period: PeriodQuery = None,
        limit: LimitQuery = 50,
    ) -> AdvisorTable:
        who = request.user
        return await boards.advisor_table(who, scope_text, _period(who, period), limit)

    @get(
        "/leaderboards/stores",
        summary="Stores ranked over a period (门店销售竞赛)",
        opt={"problems": (422,)},
    )
    async def stores(
        self,
        request: Request[Principal, Any, Any],
        scope_text: ScopeQuery = None,
        period: PeriodQuery = None,
        limit: LimitQuery = 50,
        per_advisor: Annotated[bool, QueryParameter()] = False,
    ) -> StoreTable:
        who = request.user
        return await boards.store_table(who, scope_text, _period(who, period), limit, per_advisor)

    @get(
        "/contests/{contest_id:int}/standings",
        summary="A league's ranking or a PK's pairs",
        opt={"problems": (404,)},
    )
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
        return (await rules.load_weights()).shown()

    @put(
        "/score-weights",
        summary="Change the default weights; every table is re-scored",
        opt={"problems": (422,)},
    )
    async def put_weights(self, data: JSONBody[ScoreWeightsIO]) -> dict[str, Decimal]:
        weights = rules.Weights.sent(data, await rules.load_weights())
        return (await rules.set_weights(weights)).shown()

    @get("/bonus-rates", summary="The bonus rates in force for a month", opt={"problems": (422,)})
    async def get_rates(self, period: PeriodQuery = None) -> BonusRatesOut:
        month = month_or_error(
            period or month_of(clock.today(clock.zone(clock.DEFAULT_TIMEZONE))).name
        )
        return boards.rates_out(await rules.rates_for(month))

    @put("/bonus-rates", summary="Bonus rates from a month on", opt={"problems": (422,)})
    async def put_rates(self, data: JSONBody[BonusRatesIn]) -> BonusRatesOut:
        rates = rules.rates_from(data)
        return boards.rates_out(await rules.set_rates(rates))

    @post(
        "/contests",
        status_code=201,
        summary="A league or PK contest over a window",
        opt={"problems": (422,)},
    )
    async def create_contest(self, data: JSONBody[ContestIn]) -> ContestOut:
        return await contests.create_contest(data)

    @post(
        "/periods/{month:str}/close",
        status_code=200,
        summary="Freeze a month's statements",
        opt={
            "problems": (
                409,
                422,
            )
        },
    )
    async def close(self, month: MonthPath) -> BonusStatementOut:
        _, statement = await statements.close_month(month_or_error(month, "month"))
        return boards.statement_out(statement, await boards.pay_changes(statement.month))

    @get(
        "/bonus-statements",
        summary="A month's bonus statement: JSON, or CSV with Accept: text/csv",
        media_type=MediaType.JSON,
        opt={"problems": (422,), "csv": True},
    )
    async def bonus_statements(
        self, request: Request[Principal, Any, Any], period: MonthQuery
    ) -> Response[Any]:
        statement = await statements.statement(month_or_error(period))
        if request.accept.best_match(["application/json", "text/csv"]) == "text/csv":
            return Response(
                statements.to_csv(statement),
                media_type="text/csv",
                headers={
                    "Content-Disposition": f'attachment; filename="bonus-{statement.month}.csv"'
                },
            )
        changes = await boards.pay_changes(statement.month)
        return Response(boards.statement_out(statement, changes), media_type=MediaType.JSON)

    @get(
        "/score-ledger",
        summary="The ledger rows behind a statement line",
        opt={
            "problems": (
                404,
                422,
            )
        },
    )
    async def score_ledger(
        self,
        advisor: CodeQuery,
        booked_month: MonthQuery,
        original_date: Annotated[date | None, QueryParameter()] = None,
        after: Annotated[int, QueryParameter(ge=0, le=MAX_ID)] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 200,
    ) -> LedgerPage:
        month = month_or_error(booked_month, "booked_month")
        return await boards.ledger_page(advisor, month, original_date, after, limit)
