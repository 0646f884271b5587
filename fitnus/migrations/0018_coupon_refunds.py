from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from fitnus.payments.models import RefundStatus
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('fitnus', '0017_coupon_lots')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CouponRefund',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('order', fields.ForeignKeyField('fitnus.CouponOrder', source_field='order_id', db_constraint=True, to_field='id', related_name='refunds', on_delete=OnDelete.RESTRICT)),
                ('requested_by', fields.BigIntField()),
                ('coupons', fields.IntField()),
                ('amount_krw', fields.IntField()),
                ('status', fields.CharEnumField(default=RefundStatus.PENDING, description='PENDING: pending\nDONE: done\nREFUSED: refused', enum_type=RefundStatus, max_length=16)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('ended_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('gateway_answer', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
            ],
            options={'table': 'coupon_refund', 'app': 'fitnus', 'indexes': [Index(fields=['status', 'created_at'])], 'pk_attr': 'id', 'table_description': 'Unused coupons of one order given back for their money. Its coupons'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='CouponOrder',
            name='refunded_coupons',
            field=fields.IntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name='CouponOrder',
            name='refunding_since',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
