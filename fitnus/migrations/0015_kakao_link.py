from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('fitnus', '0014_coupon_orders')]

    initial = False

    operations = [
        ops.CreateModel(
            name='KakaoLink',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.OneToOneField('fitnus.User', source_field='user_id', db_constraint=True, to_field='id', related_name='kakao_link', on_delete=OnDelete.CASCADE)),
                ('kakao_id', fields.CharField(unique=True, max_length=32)),
                ('linked_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'kakao_link', 'app': 'fitnus', 'pk_attr': 'id', 'table_description': "The Kakao account that signs in to this one, by Kakao's user id: one"},
            bases=['Model'],
        ),
    ]
