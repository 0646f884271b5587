from tortoise import migrations
from tortoise.migrations import operations as ops
from fitnus.centers.models import WithdrawalReason
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('fitnus', '0006_reminded_at')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Timeslot',
            name='withdrawal_reason',
            field=fields.CharEnumField(null=True, description='CENTER_CLOSED: center_closed\nTIMESLOT_WITHDRAWN: timeslot_withdrawn', enum_type=WithdrawalReason, max_length=32),
        ),
        ops.AddField(
            model_name='Timeslot',
            name='withdrawn_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddIndex(
            model_name='Timeslot',
            index=Index(fields=['withdrawn_at', 'reserved']),
        ),
    ]
