from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('fitnus', '0010_clubs')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Meetup',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('club', fields.ForeignKeyField('fitnus.Club', source_field='club_id', db_constraint=True, to_field='id', related_name='meetups', on_delete=OnDelete.RESTRICT)),
                ('title', fields.CharField(max_length=100)),
                ('starts_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('ends_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('place', fields.CharField(max_length=200)),
                ('latitude', fields.FloatField(null=True)),
                ('longitude', fields.FloatField(null=True)),
                ('capacity', fields.IntField()),
                ('joined', fields.IntField(default=0)),
                ('fee_coupons', fields.IntField(default=0)),
                ('drain_fence', fields.BigIntField(default=0)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'meetup', 'app': 'fitnus', 'indexes': [Index(fields=['club_id', 'starts_at'])], 'pk_attr': 'id', 'table_description': "A club's session of its own. Members join through the meetup's keyed"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='MeetupAttendee',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('meetup', fields.ForeignKeyField('fitnus.Meetup', source_field='meetup_id', db_constraint=True, to_field='id', related_name='attendees', on_delete=OnDelete.RESTRICT)),
                ('user', fields.ForeignKeyField('fitnus.User', source_field='user_id', db_constraint=True, to_field='id', related_name='meetups_joined', on_delete=OnDelete.RESTRICT)),
                ('active', fields.BooleanField(null=True)),
                ('fee_coupons', fields.IntField()),
                ('starts_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('ends_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('command_id', fields.UUIDField(unique=True)),
                ('joined_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('left_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'meetup_attendee', 'app': 'fitnus', 'unique_together': (('meetup', 'user', 'active'),), 'indexes': [Index(fields=['user_id', 'starts_at'])], 'pk_attr': 'id', 'table_description': "A member's place at a meetup. ``active`` is 1 while joined and NULL once"},
            bases=['Model'],
        ),
    ]
