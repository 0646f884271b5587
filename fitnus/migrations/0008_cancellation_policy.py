from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('fitnus', '0007_timeslot_withdrawal')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Center',
            name='cancel_full_refund_hours',
            field=fields.IntField(default=24),
        ),
        ops.AddField(
            model_name='Center',
            name='cancel_partial_refund_hours',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Center',
            name='cancel_partial_refund_percent',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Reservation',
            name='policy_full_refund_hours',
            field=fields.IntField(default=24),
        ),
        ops.AddField(
            model_name='Reservation',
            name='policy_partial_refund_hours',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Reservation',
            name='policy_partial_refund_percent',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Reservation',
            name='refund_reason',
            field=fields.CharField(null=True, max_length=32),
        ),
    ]
