from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('fitnus', '0015_kakao_link')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Club',
            name='cancel_full_refund_hours',
            field=fields.IntField(default=24),
        ),
        ops.AddField(
            model_name='Club',
            name='cancel_partial_refund_hours',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Club',
            name='cancel_partial_refund_percent',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='MeetupAttendee',
            name='policy_full_refund_hours',
            field=fields.IntField(default=24),
        ),
        ops.AddField(
            model_name='MeetupAttendee',
            name='policy_partial_refund_hours',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='MeetupAttendee',
            name='policy_partial_refund_percent',
            field=fields.IntField(null=True),
        ),
    ]
