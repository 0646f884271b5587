from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('fitnus', '0018_coupon_refunds')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Auction',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('created_by', fields.ForeignKeyField('fitnus.User', source_field='created_by_id', db_constraint=True, to_field='id', related_name='auctions_created', on_delete=OnDelete.RESTRICT)),
                ('title', fields.CharField(max_length=100)),
                ('description', fields.TextField(unique=False)),
                ('starting_price', fields.IntField()),
                ('starts_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('ends_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('soft_close_seconds', fields.IntField()),
                ('max_extensions', fields.IntField(null=True)),
                ('extensions', fields.IntField(default=0)),
                ('price', fields.IntField(null=True)),
                ('leader', fields.ForeignKeyField('fitnus.User', source_field='leader_id', null=True, db_constraint=True, to_field='id', related_name='auctions_leading', on_delete=OnDelete.RESTRICT)),
                ('leader_max', fields.IntField(null=True)),
                ('bid_count', fields.IntField(default=0)),
                ('bidder_count', fields.IntField(default=0)),
                ('drain_fence', fields.BigIntField(default=0)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('cancelled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('closed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'auction', 'app': 'fitnus', 'indexes': [Index(fields=['closed_at', 'ends_at'])], 'pk_attr': 'id', 'table_description': 'Coupons bid for a scarce thing until a set end. Its status follows the'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Bid',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('auction', fields.ForeignKeyField('fitnus.Auction', source_field='auction_id', db_constraint=True, to_field='id', related_name='bids', on_delete=OnDelete.RESTRICT)),
                ('user', fields.ForeignKeyField('fitnus.User', source_field='user_id', db_constraint=True, to_field='id', related_name='bids', on_delete=OnDelete.RESTRICT)),
                ('bidder_no', fields.IntField()),
                ('amount', fields.IntField()),
                ('max_amount', fields.IntField(null=True)),
                ('price_after', fields.IntField()),
                ('leading', fields.BooleanField()),
                ('command_id', fields.UUIDField(unique=True)),
                ('placed_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'bid', 'app': 'fitnus', 'indexes': [Index(fields=['auction_id', 'id']), Index(fields=['auction_id', 'user_id'])], 'pk_attr': 'id', 'table_description': "A bid the auction accepted: ``amount`` is what it bid (a proxy's, the"},
            bases=['Model'],
        ),
    ]
