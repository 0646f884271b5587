from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('fitnus', '0011_meetups')]

    initial = False

    operations = [
        ops.AddField(
            model_name='MeetupAttendee',
            name='reminded_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddIndex(
            model_name='MeetupAttendee',
            index=Index(fields=['reminded_at', 'starts_at']),
        ),
    ]
