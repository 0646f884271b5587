from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from fitnus.clubs.models import ApplicationStatus, MemberRole
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('fitnus', '0009_check_in')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Club',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(max_length=100)),
                ('name_key', fields.CharField(null=True, unique=True, max_length=100)),
                ('description', fields.TextField(unique=False)),
                ('sports', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('latitude', fields.FloatField(null=True)),
                ('longitude', fields.FloatField(null=True)),
                ('leader', fields.ForeignKeyField('fitnus.User', source_field='leader_id', db_constraint=True, to_field='id', related_name='led_clubs', on_delete=OnDelete.RESTRICT)),
                ('max_members', fields.IntField(null=True)),
                ('member_count', fields.IntField(default=1)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('dissolved_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'club', 'app': 'fitnus', 'pk_attr': 'id', 'table_description': 'A club (크루): a leader, members, meetups. ``name_key`` is the name'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ClubApplication',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('club', fields.ForeignKeyField('fitnus.Club', source_field='club_id', db_constraint=True, to_field='id', related_name='applications', on_delete=OnDelete.CASCADE)),
                ('user', fields.ForeignKeyField('fitnus.User', source_field='user_id', db_constraint=True, to_field='id', related_name='club_applications', on_delete=OnDelete.CASCADE)),
                ('message', fields.CharField(max_length=500)),
                ('status', fields.CharEnumField(description='PENDING: pending\nACCEPTED: accepted\nREJECTED: rejected', enum_type=ApplicationStatus, max_length=16)),
                ('pending', fields.BooleanField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('decided_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'club_application', 'app': 'fitnus', 'unique_together': (('club', 'user', 'pending'),), 'pk_attr': 'id', 'table_description': '``pending`` is 1 while undecided and NULL after, so the unique key allows'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ClubMember',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('club', fields.ForeignKeyField('fitnus.Club', source_field='club_id', db_constraint=True, to_field='id', related_name='members', on_delete=OnDelete.CASCADE)),
                ('user', fields.ForeignKeyField('fitnus.User', source_field='user_id', db_constraint=True, to_field='id', related_name='club_memberships', on_delete=OnDelete.CASCADE)),
                ('role', fields.CharEnumField(description='LEADER: leader\nMEMBER: member', enum_type=MemberRole, max_length=16)),
                ('joined_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'club_member', 'app': 'fitnus', 'unique_together': (('club', 'user'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
