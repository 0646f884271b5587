from tortoise import migrations
from tortoise.migrations import operations as ops
from fitnus.booking.models import ReservationStatus
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('fitnus', '0008_cancellation_policy')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Center',
            name='check_in_secret',
            field=fields.CharField(null=True, max_length=32),
        ),
        ops.AlterField(
            model_name='Reservation',
            name='status',
            field=fields.CharEnumField(description='CONFIRMED: confirmed\nCANCELLED: cancelled\nATTENDED: attended\nNO_SHOW: no_show', enum_type=ReservationStatus, max_length=16),
        ),
        ops.AddField(
            model_name='Reservation',
            name='checked_in_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddIndex(
            model_name='Reservation',
            index=Index(fields=['status', 'ends_at']),
        ),
    ]
