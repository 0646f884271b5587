from tortoise import migrations
from tortoise.migrations import operations as ops
from fitnus.wallet.models import LedgerKind
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index
from datetime import UTC, datetime, timedelta

# Coupons held before lots existed last this long from the migration.
VALIDITY = timedelta(days=365)


async def lots_for_coupons_held(apps, schema_editor):
    """One lot per person holding coupons or having spent some on what is
    still to come (future seats and meetup places, waitlist offers' holds),
    with the draws of those, so a refund has a lot to go back to. A person
    who already has their lot (a re-run after a failure) is skipped."""
    db = schema_editor.client
    wallet, lot, draw = (apps.get_model("fitnus", name) for name in ("Wallet", "CouponLot", "CouponDraw"))
    reservation, place, entry = (apps.get_model("fitnus", name) for name in (
        "Reservation", "MeetupAttendee", "WaitlistEntry"))
    now = datetime.now(UTC)
    seats = reservation.filter(active=True, starts_at__gt=now, price_coupons__gt=0).using_db(db)
    places = place.filter(active=True, starts_at__gt=now, fee_coupons__gt=0).using_db(db)
    offers = entry.filter(status="offered", held_coupons__gt=0).using_db(db)
    people = set(await wallet.filter(balance__gt=0).using_db(db).values_list("user_id", flat=True))
    for query in (seats, places, offers):
        people |= set(await query.values_list("user_id", flat=True))
    for held in await wallet.filter(user_id__in=sorted(people)).using_db(db):
        reference = f"migration:{held.user_id}"
        if await lot.filter(reference=reference).using_db(db).exists():
            continue
        spent = [(f"reservation:{seat.command_id}", seat.price_coupons)
                 for seat in await seats.filter(user_id=held.user_id)]
        spent += [(f"meetup:{seat.command_id}", seat.fee_coupons)
                  for seat in await places.filter(user_id=held.user_id)]
        holds = [(f"waitlist:{offer.id}", offer.held_coupons)
                 for offer in await offers.filter(user_id=held.user_id)]
        created = await lot.create(
            user_id=held.user_id, coupons=held.balance + sum(coupons for _, coupons in spent),
            remaining=held.balance - held.held, expired=0, reference=reference,
            acquired_at=now, expires_at=now + VALIDITY, using_db=db)
        for paid_for, coupons in spent + holds:
            await draw.create(lot_id=created.id, paid_for=paid_for, coupons=coupons, returned=0,
                              created_at=now, using_db=db)


class Migration(migrations.Migration):
    dependencies = [('fitnus', '0016_club_refund_policy')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CouponLot',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('fitnus.User', source_field='user_id', db_constraint=True, to_field='id', related_name='coupon_lots', on_delete=OnDelete.RESTRICT)),
                ('coupons', fields.BigIntField()),
                ('remaining', fields.BigIntField()),
                ('expired', fields.BigIntField(default=0)),
                ('reference', fields.CharField(unique=True, max_length=128)),
                ('acquired_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expiry_notified_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'coupon_lot', 'app': 'fitnus', 'indexes': [Index(fields=['user_id', 'expires_at']), Index(fields=['expires_at'])], 'pk_attr': 'id', 'table_description': 'Coupons acquired together (a purchase, a grant), which expire together.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='CouponDraw',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('lot', fields.ForeignKeyField('fitnus.CouponLot', source_field='lot_id', db_constraint=True, to_field='id', related_name='draws', on_delete=OnDelete.RESTRICT)),
                ('paid_for', fields.CharField(max_length=128)),
                ('coupons', fields.BigIntField()),
                ('returned', fields.BigIntField(default=0)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'coupon_draw', 'app': 'fitnus', 'indexes': [Index(fields=['paid_for'])], 'pk_attr': 'id', 'table_description': 'Coupons one lot gave to one thing, named by ``paid_for``.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='CouponOrder',
            name='coupon_validity_days',
            field=fields.IntField(default=365, db_default=365),
        ),
        ops.AlterField(
            model_name='LedgerEntry',
            name='kind',
            field=fields.CharEnumField(description='GRANT: grant\nPURCHASE: purchase\nBOOKING_DEBIT: booking_debit\nBOOKING_REFUND: booking_refund\nBID_HOLD: bid_hold\nBID_RELEASE: bid_release\nAUCTION_CAPTURE: auction_capture\nEXPIRY: expiry\nPURCHASE_REFUND: purchase_refund', enum_type=LedgerKind, max_length=24),
        ),
        ops.RunPython(lots_for_coupons_held, ops.RunPython.noop),
    ]
