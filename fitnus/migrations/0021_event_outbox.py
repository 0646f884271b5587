from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('fitnus', '0020_auction_events')]

    initial = False

    operations = [
        ops.CreateModel(
            name='EventOutbox',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('topic', fields.CharField(max_length=64)),
                ('key', fields.CharField(max_length=64)),
                ('payload', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('sent_by', fields.BigIntField(null=True)),
            ],
            options={'table': 'event_outbox', 'app': 'fitnus', 'pk_attr': 'id', 'table_description': 'Domain events committed and not yet on Kafka, in the order they happened.'},
            bases=['Model'],
        ),
    ]
