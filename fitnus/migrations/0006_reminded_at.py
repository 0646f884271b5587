from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('fitnus', '0005_reminder_index')]

    initial = False

    operations = [
        ops.RemoveIndex(
            model_name='Reservation',
            name=None,
            fields=['starts_at'],
        ),
        ops.AddField(
            model_name='Reservation',
            name='reminded_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddIndex(
            model_name='Reservation',
            index=Index(fields=['reminded_at', 'starts_at']),
        ),
    ]
