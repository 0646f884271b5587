from tortoise import migrations
from tortoise.migrations import operations as ops
from fitnus.waitlist.models import WaitlistStatus
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('fitnus', '0012_meetup_reminders')]

    initial = False

    operations = [
        ops.CreateModel(
            name='WaitlistEntry',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('fitnus.User', source_field='user_id', db_constraint=True, to_field='id', related_name='waitlist_entries', on_delete=OnDelete.RESTRICT)),
                ('timeslot', fields.ForeignKeyField('fitnus.Timeslot', source_field='timeslot_id', null=True, db_constraint=True, to_field='id', related_name='waitlist', on_delete=OnDelete.RESTRICT)),
                ('meetup', fields.ForeignKeyField('fitnus.Meetup', source_field='meetup_id', null=True, db_constraint=True, to_field='id', related_name='waitlist', on_delete=OnDelete.RESTRICT)),
                ('status', fields.CharEnumField(description='WAITING: waiting\nOFFERED: offered\nCLAIMED: claimed\nEXPIRED: expired\nLEFT: left', enum_type=WaitlistStatus, max_length=16)),
                ('active', fields.BooleanField(null=True)),
                ('auto_claim', fields.BooleanField(default=False)),
                ('held_coupons', fields.IntField(default=0)),
                ('joined_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('offered_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('offer_expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('ended_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('end_reason', fields.CharField(null=True, max_length=32)),
                ('seat_id', fields.BigIntField(null=True)),
            ],
            options={'table': 'waitlist_entry', 'app': 'fitnus', 'unique_together': (('timeslot', 'user', 'active'), ('meetup', 'user', 'active')), 'indexes': [Index(fields=['timeslot_id', 'active', 'id']), Index(fields=['meetup_id', 'active', 'id']), Index(fields=['user_id', 'id']), Index(fields=['status', 'offer_expires_at'])], 'pk_attr': 'id', 'table_description': 'A person in line for a sold-out timeslot or a full meetup (one of the'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Meetup',
            name='offered',
            field=fields.IntField(default=0),
        ),
        ops.AddField(
            model_name='Timeslot',
            name='offered',
            field=fields.IntField(default=0),
        ),
    ]
