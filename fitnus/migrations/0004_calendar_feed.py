from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('fitnus', '0003_booking')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CalendarFeed',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.OneToOneField('fitnus.User', source_field='user_id', db_constraint=True, to_field='id', related_name='calendar_feed', on_delete=OnDelete.CASCADE)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'calendar_feed', 'app': 'fitnus', 'pk_attr': 'id', 'table_description': "A user's secret feed URL for phone calendar apps. Only a SHA-256 of the"},
            bases=['Model'],
        ),
    ]
