from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from fitnus.centers.models import WallClockTimeField
from fitnus.wallet.models import LedgerKind
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('fitnus', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Center',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('owner', fields.ForeignKeyField('fitnus.User', source_field='owner_id', db_constraint=True, to_field='id', related_name='centers', on_delete=OnDelete.RESTRICT)),
                ('name', fields.CharField(max_length=100)),
                ('description', fields.TextField(unique=False)),
                ('address', fields.CharField(max_length=200)),
                ('latitude', fields.FloatField()),
                ('longitude', fields.FloatField()),
                ('sports', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('phone', fields.CharField(null=True, max_length=32)),
                ('opens_at', WallClockTimeField(null=True, generated=False, unique=False)),
                ('closes_at', WallClockTimeField(null=True, generated=False, unique=False)),
                ('version', fields.IntField(default=1)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('deleted_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'center', 'app': 'fitnus', 'indexes': [Index(fields=['latitude', 'longitude'])], 'pk_attr': 'id', 'table_description': 'A partner center. Soft-deleted, so past reservations keep their center.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='LedgerEntry',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('fitnus.User', source_field='user_id', db_constraint=True, to_field='id', related_name='ledger', on_delete=OnDelete.RESTRICT)),
                ('kind', fields.CharEnumField(description='GRANT: grant\nPURCHASE: purchase\nBOOKING_DEBIT: booking_debit\nBOOKING_REFUND: booking_refund\nBID_HOLD: bid_hold\nBID_RELEASE: bid_release\nAUCTION_CAPTURE: auction_capture', enum_type=LedgerKind, max_length=24)),
                ('amount', fields.BigIntField()),
                ('balance_after', fields.BigIntField()),
                ('reference', fields.CharField(unique=True, max_length=128)),
                ('center_id', fields.BigIntField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'ledger_entry', 'app': 'fitnus', 'indexes': [Index(fields=['user_id', 'id']), Index(fields=['center_id', 'created_at'])], 'pk_attr': 'id', 'table_description': 'Append-only. ``reference`` is unique, so a retried operation cannot apply'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Program',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('center', fields.ForeignKeyField('fitnus.Center', source_field='center_id', db_constraint=True, to_field='id', related_name='programs', on_delete=OnDelete.RESTRICT)),
                ('name', fields.CharField(max_length=100)),
                ('sport', fields.CharField(max_length=32)),
                ('price_coupons', fields.IntField()),
                ('duration_minutes', fields.IntField()),
                ('description', fields.TextField(unique=False)),
                ('parallel_sessions', fields.BooleanField(default=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'program', 'app': 'fitnus', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SearchOutbox',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('center_id', fields.BigIntField(unique=True)),
                ('version', fields.IntField()),
                ('updated_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'search_outbox', 'app': 'fitnus', 'pk_attr': 'id', 'table_description': 'Centers whose latest version may not be in the search index yet.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Timeslot',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('program', fields.ForeignKeyField('fitnus.Program', source_field='program_id', db_constraint=True, to_field='id', related_name='timeslots', on_delete=OnDelete.RESTRICT)),
                ('starts_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('ends_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('capacity', fields.IntField()),
                ('reserved', fields.IntField(default=0)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'timeslot', 'app': 'fitnus', 'indexes': [Index(fields=['program_id', 'starts_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Wallet',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.OneToOneField('fitnus.User', source_field='user_id', db_constraint=True, to_field='id', related_name='wallet', on_delete=OnDelete.CASCADE)),
                ('balance', fields.BigIntField(default=0)),
                ('held', fields.BigIntField(default=0)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'wallet', 'app': 'fitnus', 'pk_attr': 'id', 'table_description': 'One per user. available = balance - held, never below zero: every change'},
            bases=['Model'],
        ),
    ]
