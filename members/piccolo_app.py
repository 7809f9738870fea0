import os

from piccolo.conf.apps import AppConfig

from members import tables

CURRENT_DIRECTORY = os.path.dirname(os.path.abspath(__file__))

APP_CONFIG = AppConfig(
    app_name="members",
    migrations_folder_path=os.path.join(CURRENT_DIRECTORY, "piccolo_migrations"),
    table_classes=[
        tables.Store,
        tables.Advisor,
        tables.Product,
        tables.Member,
        tables.Baby,
        tables.Purchase,
        tables.PurchaseLine,
        tables.Redemption,
        tables.PointsLedger,
        tables.UserAccount,
        tables.UserStore,
        tables.PosKey,
        tables.StoreDay,
        tables.StoreActivity,
        tables.RedemptionLine,
        tables.PurchaseReturn,
        tables.ReturnLine,
        tables.PointsLot,
        tables.PointsPolicy,
        tables.PointsPromotion,
        tables.SettledMonth,
        tables.SettlementLine,
    ],
    migration_dependencies=[],
    commands=[],
)
