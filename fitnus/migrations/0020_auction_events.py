from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('fitnus', '0019_auctions')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AuctionEvent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('auction', fields.ForeignKeyField('fitnus.Auction', source_field='auction_id', db_constraint=True, to_field='id', related_name='events', on_delete=OnDelete.RESTRICT)),
                ('type', fields.CharField(max_length=32)),
                ('payload', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'auction_event', 'app': 'fitnus', 'indexes': [Index(fields=['auction_id', 'id'])], 'pk_attr': 'id', 'table_description': 'What watchers of an auction are told, in order: a bid, an extension,'},
            bases=['Model'],
        ),
    ]
