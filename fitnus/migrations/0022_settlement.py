from tortoise import migrations
from tortoise.migrations import operations as ops
from fitnus.batches.models import BatchJob, RunStatus
from fitnus.settlement.models import DiscrepancyKind, DiscrepancyStatus, SettlementStatus, UsageKind
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('fitnus', '0021_event_outbox')]

    initial = False

    operations = [
        ops.CreateModel(
            name='BatchRun',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('job', fields.CharEnumField(description='DAILY_USAGE: daily_usage\nMONTHLY_SETTLEMENT: monthly_settlement\nCOUPON_EXPIRY: coupon_expiry\nNO_SHOWS: no_shows', enum_type=BatchJob, max_length=32)),
                ('period', fields.CharField(null=True, max_length=16)),
                ('status', fields.CharEnumField(default=RunStatus.RUNNING, description='RUNNING: running\nDONE: done\nFAILED: failed', enum_type=RunStatus, max_length=16)),
                ('rows', fields.BigIntField(default=0)),
                ('cursor_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('cursor_id', fields.BigIntField(default=0)),
                ('attempts', fields.IntField(default=1)),
                ('requested_by', fields.BigIntField(null=True)),
                ('error', fields.CharField(null=True, max_length=255)),
                ('started_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'batch_run', 'app': 'fitnus', 'unique_together': (('job', 'period'),), 'indexes': [Index(fields=['status', 'updated_at'])], 'pk_attr': 'id', 'table_description': 'One run of a batch job, for a period (a Seoul day, a month) or none.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Discrepancy',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('month', fields.CharField(max_length=7)),
                ('center_id', fields.BigIntField(null=True)),
                ('kind', fields.CharEnumField(description='USAGE: usage\nPAYMENT: payment\nGROSS: gross', enum_type=DiscrepancyKind, max_length=16)),
                ('subject', fields.CharField(max_length=64)),
                ('detail', fields.CharField(max_length=255)),
                ('status', fields.CharEnumField(default=DiscrepancyStatus.OPEN, description='OPEN: open\nRESOLVED: resolved', enum_type=DiscrepancyStatus, max_length=16)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('resolved_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('resolved_by', fields.BigIntField(null=True)),
                ('note', fields.CharField(null=True, max_length=500)),
            ],
            options={'table': 'discrepancy', 'app': 'fitnus', 'unique_together': (('month', 'kind', 'subject', 'detail'),), 'indexes': [Index(fields=['status', 'month'])], 'pk_attr': 'id', 'table_description': 'One difference a verification found, open until an admin resolves it'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Settlement',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('center_id', fields.BigIntField()),
                ('month', fields.CharField(max_length=7)),
                ('gross_krw', fields.BigIntField()),
                ('commission_bp', fields.IntField()),
                ('commission_krw', fields.BigIntField()),
                ('vat_krw', fields.BigIntField()),
                ('payout_krw', fields.BigIntField()),
                ('status', fields.CharEnumField(default=SettlementStatus.DRAFT, description='DRAFT: draft\nVERIFIED: verified\nPAID: paid', enum_type=SettlementStatus, max_length=16)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('computed_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('verified_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('verified_by', fields.BigIntField(null=True)),
                ('paid_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('paid_by', fields.BigIntField(null=True)),
            ],
            options={'table': 'settlement', 'app': 'fitnus', 'unique_together': (('center_id', 'month'),), 'indexes': [Index(fields=['month', 'status'])], 'pk_attr': 'id', 'table_description': 'What one center is paid for one month (``YYYY-MM``, Seoul), once.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='UsageRecord',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('entry_key', fields.CharField(unique=True, max_length=64)),
                ('center_id', fields.BigIntField()),
                ('day', fields.DateField()),
                ('reservation_id', fields.BigIntField(db_index=True)),
                ('user_id', fields.BigIntField()),
                ('program_id', fields.BigIntField()),
                ('starts_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('kind', fields.CharEnumField(description='ATTENDED: attended\nNO_SHOW: no_show\nLATE_CANCEL: late_cancel\nADJUSTMENT: adjustment', enum_type=UsageKind, max_length=16)),
                ('coupons', fields.IntField()),
                ('amount_krw', fields.BigIntField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'usage_record', 'app': 'fitnus', 'indexes': [Index(fields=['center_id', 'day']), Index(fields=['day', 'center_id'])], 'pk_attr': 'id', 'table_description': 'Coupons a center earned by one reservation, on the Seoul day of its'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Center',
            name='commission_bp',
            field=fields.IntField(null=True),
        ),
        ops.AddIndex(
            model_name='Reservation',
            index=Index(fields=['starts_at', 'id']),
        ),
    ]
