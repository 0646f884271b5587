from tortoise import migrations
from tortoise.migrations import operations as ops
from fitnus.booking.models import ReservationStatus
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('fitnus', '0002_centers_and_wallet')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Reservation',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('fitnus.User', source_field='user_id', db_constraint=True, to_field='id', related_name='reservations', on_delete=OnDelete.RESTRICT)),
                ('timeslot', fields.ForeignKeyField('fitnus.Timeslot', source_field='timeslot_id', db_constraint=True, to_field='id', related_name='reservations', on_delete=OnDelete.RESTRICT)),
                ('status', fields.CharEnumField(description='CONFIRMED: confirmed\nCANCELLED: cancelled', enum_type=ReservationStatus, max_length=16)),
                ('active', fields.BooleanField(null=True)),
                ('price_coupons', fields.IntField()),
                ('starts_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('ends_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('command_id', fields.UUIDField(unique=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('cancelled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'reservation', 'app': 'fitnus', 'unique_together': (('timeslot', 'user', 'active'),), 'indexes': [Index(fields=['user_id', 'starts_at'])], 'pk_attr': 'id', 'table_description': 'A seat. ``active`` is 1 while confirmed and NULL once cancelled, so the'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Timeslot',
            name='drain_fence',
            field=fields.BigIntField(default=0),
        ),
    ]
