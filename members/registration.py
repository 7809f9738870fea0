"""A member registering at the till. The chain has one member per phone and credits
one recruit: a phone already known returns the member as they are."""

from __future__ import annotations

from core import clock
from core.db import LostRace, fetch, in_write_transaction
from core.events import bus
from members.babies import check_babies
from members.events import MemberJoined
from members.phones import phone_or_error
from members.schemas import MemberRegistered, MemberRegistration
from members.stores import StoreRef, advisor_at, event_instant
from members.tables import Baby, Member


async def register_member(store: StoreRef, data: MemberRegistration) -> MemberRegistered:
    phone = phone_or_error(data.phone, "phone")
    joined_at = event_instant(data.registered_at or clock.now(), store, "registered_at")
    joined_on = clock.local_date(joined_at, store.tz)
    check_babies(data.babies, clock.today(store.tz))
    advisor_id = await advisor_at(store, data.advisor_code)

    async def work() -> MemberRegistered:
        inserted = await fetch(
            "INSERT INTO member (phone, name, home_store, owning_advisor, recruited_by,"
            " joined_at, joined_on, do_not_contact, points_balance, created_at)"
            " VALUES ({}, {}, {}, {}, {}, {}, {}, {}, 0, {})"
            " ON CONFLICT (phone) DO NOTHING RETURNING id",
            phone,
            data.name,
            store.id,
            advisor_id,
            advisor_id,
            joined_at,
            joined_on,
            data.do_not_contact,
            clock.now(),
        )
        if not inserted:
            existing = await Member.select(Member.id).where(Member.phone == phone).first()
            if existing is None:  # removed between the two statements: try again
                raise LostRace()
            return MemberRegistered(member_id=existing["id"], created=False)
        member_id = int(inserted[0]["id"])
        await bus.publish(
            [MemberJoined(member_id, store.id, joined_on, data.do_not_contact, advisor_id)]
        )
        if data.babies:
            await Baby.insert(
                *[
                    Baby(
                        member=member_id, name=b.name, birth_date=b.birth_date, due_date=b.due_date
                    )
                    for b in data.babies
                ]
            )
        return MemberRegistered(member_id=member_id, created=True)

    return await in_write_transaction(work)
