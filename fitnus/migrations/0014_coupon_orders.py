from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from fitnus.payments.models import OrderStatus
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('fitnus', '0013_waitlist')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CouponOrder',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('fitnus.User', source_field='user_id', db_constraint=True, to_field='id', related_name='coupon_orders', on_delete=OnDelete.RESTRICT)),
                ('bundle_id', fields.CharField(max_length=16)),
                ('coupons', fields.IntField()),
                ('amount_krw', fields.IntField()),
                ('status', fields.CharEnumField(default=OrderStatus.PENDING, description='PENDING: pending\nAPPROVED: approved\nCANCELLED: cancelled\nFAILED: failed\nREFUNDED: refunded\nPARTIALLY_REFUNDED: partially_refunded', enum_type=OrderStatus, max_length=24)),
                ('gateway', fields.CharField(max_length=16)),
                ('tid', fields.CharField(null=True, unique=True, max_length=64)),
                ('aid', fields.CharField(null=True, max_length=64)),
                ('approved_krw', fields.IntField(null=True)),
                ('refunded_krw', fields.IntField(default=0)),
                ('callback_key_hash', fields.CharField(max_length=64)),
                ('approving_since', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('failure_reason', fields.CharField(null=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('approved_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('ended_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('gateway_answers', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
            ],
            options={'table': 'coupon_order', 'app': 'fitnus', 'indexes': [Index(fields=['user_id', 'id'])], 'pk_attr': 'id', 'table_description': 'One purchase through Kakao Pay, whose id is the ``partner_order_id``.'},
            bases=['Model'],
        ),
    ]
