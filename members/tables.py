"""The registry (stores, advisors, products), members and babies, purchases, the
points ledger, and the people and tills allowed to use the service.

Money is stored as integer fen (分): exact on SQLite and PostgreSQL alike and cheap
to sum. It becomes a ``Decimal`` of yuan only at the edges.
"""

from __future__ import annotations

from piccolo.columns import (
    BigInt,
    BigSerial,
    Boolean,
    Date,
    DoublePrecision,
    ForeignKey,
    Integer,
    Serial,
    SmallInt,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Store(Table, tablename="store"):
    id = Serial(primary_key=True)
    code = Varchar(length=16, unique=True)
    name = Varchar(length=100)
    region = Varchar(length=50, index=True)
    timezone = Varchar(length=64, default="Asia/Shanghai")
    latitude = DoublePrecision(null=True, default=None)
    longitude = DoublePrecision(null=True, default=None)
    # Takes the brand's online orders (O2O): needs its position. A partial index on
    # (latitude, longitude) of these stores serves the nearest-store search.
    o2o = Boolean(default=False)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class Advisor(Table, tablename="advisor"):
    id = Serial(primary_key=True)
    code = Varchar(length=16, unique=True)
    store = ForeignKey(Store, on_delete=OnDelete.restrict, null=False, index=True)
    name = Varchar(length=64)
    phone = Varchar(length=11)
    active = Boolean(default=True)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class Product(Table, tablename="product"):
    id = Serial(primary_key=True)
    sku = Varchar(length=32, unique=True)
    name = Varchar(length=100)
    category = Varchar(length=32, index=True)
    stage = SmallInt(null=True, default=None)
    days_of_supply = Integer(null=True, default=None)
    points_eligible = Boolean(default=True)
    updated_at = Timestamptz(default=TimestamptzNow())


class Member(Table, tablename="member"):
    id = BigSerial(primary_key=True)
    phone = Varchar(length=11, unique=True)
    name = Varchar(length=64, default="")
    home_store = ForeignKey(Store, on_delete=OnDelete.restrict, null=False, index=True)
    # Who looks after the member now; changes when an advisor leaves.
    owning_advisor = ForeignKey(
        Advisor, on_delete=OnDelete.restrict, null=True, default=None, index=True
    )
    # Who recruited the member; fixed forever, it is what the new-member credit names.
    recruited_by = ForeignKey(Advisor, on_delete=OnDelete.restrict, null=True, default=None)
    joined_at = Timestamptz()
    joined_on = Date()
    do_not_contact = Boolean(default=False)
    # An advisor reached a wrong number: the store owner should fix the phone.
    wrong_number_at = Timestamptz(null=True, default=None)
    # A cache of SUM(points_ledger.points) kept in the ledger's own transaction, so
    # that "never below zero" is one atomic conditional UPDATE.
    points_balance = Integer(default=0)
    # The latest purchase, kept with the purchase: the daily run finds members gone
    # quiet by this without scanning purchases.
    last_purchased_at = Timestamptz(null=True, default=None)
    last_purchase_on = Date(null=True, default=None, index=True)
    # The stage of the latest formula bought: stage_up asks only this.
    last_formula_at = Timestamptz(null=True, default=None)
    last_formula_stage = SmallInt(null=True, default=None)
    # The tier earned by points in a calendar year (``tier_year``), kept through the
    # year after: read as none once that has passed (members.tiers).
    tier = Varchar(length=16, null=True, default=None)
    tier_year = Integer(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class Baby(Table, tablename="baby"):
    id = BigSerial(primary_key=True)
    member = ForeignKey(Member, on_delete=OnDelete.cascade, null=False, index=True)
    name = Varchar(length=64, default="")
    birth_date = Date(null=True, default=None, index=True)
    due_date = Date(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class Purchase(Table, tablename="purchase"):
    id = BigSerial(primary_key=True)
    store = ForeignKey(Store, on_delete=OnDelete.restrict, null=False)
    receipt_id = Varchar(length=64)
    member = ForeignKey(Member, on_delete=OnDelete.restrict, null=False)
    advisor = ForeignKey(Advisor, on_delete=OnDelete.restrict, null=True, default=None, index=True)
    purchased_at = Timestamptz()
    purchased_on = Date()  # store-local calendar day
    total_fen = BigInt()
    eligible_fen = BigInt()
    points_earned = Integer()  # with a promotion's extra
    bonus_points = Integer(default=0)  # of which a promotion's extra
    # RN3: bought within 90 days of the member's previous purchase (anywhere). Kept
    # exact when a receipt arrives late: the next purchase's flag is recomputed too.
    repeat = Boolean(default=False)
    # The balance right after this purchase: part of the answer a replay gets back.
    points_balance_after = Integer()
    request_hash = Varchar(length=64)
    created_at = Timestamptz(default=TimestamptzNow())

    # UNIQUE (store, receipt_id): a unique index made in the migration, since
    # SQLite cannot ALTER TABLE … ADD CONSTRAINT.


class PurchaseLine(Table, tablename="purchase_line"):
    id = BigSerial(primary_key=True)
    purchase = ForeignKey(Purchase, on_delete=OnDelete.restrict, null=False, index=True)
    line_no = SmallInt()
    product = ForeignKey(Product, on_delete=OnDelete.restrict, null=False)
    quantity = Integer()
    amount_fen = BigInt()
    # A promotion's extra points on this line (the best match, never stacked).
    bonus_points = Integer(default=0)
    promotion = Integer(null=True, default=None)


class Redemption(Table, tablename="redemption"):
    id = BigSerial(primary_key=True)
    store = ForeignKey(Store, on_delete=OnDelete.restrict, null=False)
    redemption_id = Varchar(length=64)
    member = ForeignKey(Member, on_delete=OnDelete.restrict, null=False, index=True)
    points = Integer()
    redeemed_at = Timestamptz()
    redeemed_on = Date()
    points_balance_after = Integer()
    # What the brand owes the store for it, at the rate in force when it was made.
    value_fen = BigInt(default=0)
    value_per_100_fen = Integer(default=0)
    request_hash = Varchar(length=64)
    created_at = Timestamptz(default=TimestamptzNow())

    # UNIQUE (store, redemption_id): see Purchase.


class RedemptionLine(Table, tablename="redemption_line"):
    """The goods a redemption took, as the till sent them."""

    id = BigSerial(primary_key=True)
    redemption = ForeignKey(Redemption, on_delete=OnDelete.restrict, null=False, index=True)
    line_no = SmallInt()
    product = ForeignKey(Product, on_delete=OnDelete.restrict, null=False)
    quantity = Integer()
    amount_fen = BigInt(null=True, default=None)


class PurchaseReturn(Table, tablename="purchase_return"):
    """Goods brought back: a new fact beside the purchase, never an edit of it."""

    id = BigSerial(primary_key=True)
    store = ForeignKey(Store, on_delete=OnDelete.restrict, null=False)
    return_id = Varchar(length=64)
    purchase = ForeignKey(Purchase, on_delete=OnDelete.restrict, null=False, index=True)
    member = ForeignKey(Member, on_delete=OnDelete.restrict, null=False)
    returned_at = Timestamptz()
    returned_on = Date()
    amount_fen = BigInt()
    whole = Boolean()  # nothing of the receipt is left after it
    points_reversed = Integer()  # taken from the balance
    points_owed = Integer()  # the receipt's points the return undoes (score facts)
    shortfall = Integer()  # points_owed - points_reversed: spent already
    points_balance_after = Integer()
    request_hash = Varchar(length=64)
    created_at = Timestamptz(default=TimestamptzNow())

    # UNIQUE (store, return_id): a migration's index.


class ReturnLine(Table, tablename="return_line"):
    id = BigSerial(primary_key=True)
    purchase_return = ForeignKey(
        PurchaseReturn, on_delete=OnDelete.restrict, null=False, index=True
    )
    product = ForeignKey(Product, on_delete=OnDelete.restrict, null=False)
    quantity = Integer()
    amount_fen = BigInt()


class PointsLedger(Table, tablename="points_ledger"):
    """Append-only. A member's balance is the sum of their rows."""

    id = BigSerial(primary_key=True)
    member = ForeignKey(Member, on_delete=OnDelete.restrict, null=False, index=True)
    store = ForeignKey(Store, on_delete=OnDelete.restrict, null=False)
    kind = Varchar(length=16)  # earn | redeem | reverse | expire
    points = Integer()  # signed
    # earn: the promotion behind most of the extra, and the extra itself.
    promotion = Integer(null=True, default=None)
    bonus_points = Integer(default=0)
    # Unique (a migration's index: SQLite cannot add a UNIQUE column).
    purchase_return = ForeignKey(
        PurchaseReturn, on_delete=OnDelete.restrict, null=True, default=None
    )
    lot = BigInt(null=True, default=None)  # expire: the lot that lapsed
    purchase = ForeignKey(
        Purchase, on_delete=OnDelete.restrict, null=True, default=None, unique=True
    )
    redemption = ForeignKey(
        Redemption, on_delete=OnDelete.restrict, null=True, default=None, unique=True
    )
    occurred_at = Timestamptz()
    occurred_on = Date()
    # The month the settlement reports it in: its own, or the month it was written
    # in when its own was already settled (an adjustment, never an edit).
    booked_month = Varchar(length=7, default="")
    created_at = Timestamptz(default=TimestamptzNow())


class PointsLot(Table, tablename="points_lot"):
    """What a member earned in a month, expiring together at the end of the month
    ``expiry_months`` later. Spending and reversals take the oldest lots first; the
    daily job books what lapsed. remaining = earned - used - expired."""

    id = BigSerial(primary_key=True)
    member = ForeignKey(Member, on_delete=OnDelete.restrict, null=False)
    month = Varchar(length=7)
    expires_on = Date()  # the last day its points can be spent
    earned = Integer(default=0)
    used = Integer(default=0)
    expired = Integer(default=0)

    # UNIQUE (member, month, expires_on) and an index on open lots: a migration's.


class PointsPolicy(Table, tablename="points_policy"):
    """HQ's points policy, one row per change: the latest applies from its time on
    to new bookings, never to what is already booked."""

    id = Serial(primary_key=True)
    value_per_100_fen = Integer()
    expiry_months = Integer()
    expiry_warning_days = Integer()
    tiers = Varchar(length=2000)  # JSON: [{"code", "name", "min_points_in_year"}]
    set_at = Timestamptz(default=TimestamptzNow())


class PointsPromotion(Table, tablename="points_promotion"):
    """N× points on matching lines over a window (double-points days)."""

    id = Serial(primary_key=True)
    promotion_id = Varchar(length=64, unique=True)
    name = Varchar(length=100)
    starts_on = Date()
    ends_on = Date()
    multiplier = Integer()
    # JSON lists, or null for "any": which lines, stores and members it covers.
    skus = Varchar(length=20000, null=True, default=None)
    categories = Varchar(length=2000, null=True, default=None)
    store_codes = Varchar(length=200000, null=True, default=None)
    region = Varchar(length=50, null=True, default=None)
    tiers = Varchar(length=200, null=True, default=None)
    request_hash = Varchar(length=64)
    created_at = Timestamptz(default=TimestamptzNow())


class SettledMonth(Table, tablename="settled_month"):
    """A month whose store settlements were frozen by the month's close."""

    id = Serial(primary_key=True)
    month = Varchar(length=7, unique=True)
    settled_at = Timestamptz(default=TimestamptzNow())


class SettlementLine(Table, tablename="settlement_line"):
    """A store's points settlement for a settled month, as frozen."""

    id = BigSerial(primary_key=True)
    month = Varchar(length=7, index=True)
    store = ForeignKey(Store, on_delete=OnDelete.restrict, null=False)
    points_issued = BigInt()
    points_redeemed = BigInt()
    points_reversed = BigInt()
    points_expired = BigInt()
    redeemed_value_fen = BigInt()


class UserAccount(Table, tablename="user_account"):
    id = Serial(primary_key=True)
    phone = Varchar(length=11, unique=True)
    password_hash = Varchar(length=255)
    role = Varchar(length=16)  # advisor | owner | hq | region
    # A regional marketer's (营销通) region: they see the stores inside it only.
    region = Varchar(length=50, null=True, default=None)
    advisor = ForeignKey(Advisor, on_delete=OnDelete.restrict, null=True, default=None, unique=True)
    active = Boolean(default=True)
    created_at = Timestamptz(default=TimestamptzNow())


class UserStore(Table, tablename="user_store"):
    """The stores an owner may see."""

    id = Serial(primary_key=True)
    user = ForeignKey(UserAccount, on_delete=OnDelete.cascade, null=False, index=True)
    store = ForeignKey(Store, on_delete=OnDelete.cascade, null=False)

    # UNIQUE (user, store): see Purchase.


class PosKey(Table, tablename="pos_key"):
    id = Serial(primary_key=True)
    store = ForeignKey(Store, on_delete=OnDelete.cascade, null=False, index=True)
    # SHA-256 of a 256-bit random key: a slow hash adds nothing against brute force
    # here and would cost every till request a few milliseconds.
    key_hash = Varchar(length=64, unique=True)
    prefix = Varchar(length=12)
    created_at = Timestamptz(default=TimestamptzNow())
    revoked_at = Timestamptz(null=True, default=None)


class StoreDay(Table, tablename="store_day"):
    """A store's sales and recruits per day, ISO week and month (``period`` as the API
    writes it): receipts, revenue, RN3's repeat revenue by the purchase's store, new
    members by their home store. Kept by database triggers in the transaction of each
    purchase and member, so it always equals the rows it sums."""

    id = BigSerial(primary_key=True)
    store = ForeignKey(Store, on_delete=OnDelete.restrict, null=False)
    period = Varchar(length=10)
    receipts = Integer(default=0)
    revenue_fen = BigInt(default=0)
    repeat_fen = BigInt(default=0)
    new_members = Integer(default=0)

    # UNIQUE (store, period): a migration's index.


class StoreActivity(Table, tablename="store_activity"):
    """Members of a store (by home store) as of the end of a day: how many had joined,
    and how many bought in the 90 and the 365 days to it. Taken by the daily job for
    the day just ended, and for the month ends before it."""

    id = BigSerial(primary_key=True)
    store = ForeignKey(Store, on_delete=OnDelete.restrict, null=False)
    day = Date()
    members = Integer(default=0)
    active_3m = Integer(default=0)
    active_12m = Integer(default=0)

    # UNIQUE (store, day): a migration's index.
