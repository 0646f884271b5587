from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('fitnus', '0004_calendar_feed')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='Reservation',
            index=Index(fields=['starts_at']),
        ),
    ]
