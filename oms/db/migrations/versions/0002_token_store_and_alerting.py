"""Token store, alert incidents and connector health; shop secrets sealed out of `credentials`.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 02:00:00
"""

from alembic import op
import sqlalchemy as sa
import oms.db.schema
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
Time = oms.db.schema.UTCDateTime(timezone=True)
Json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    with op.batch_alter_table('shops', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sealed_secrets', sa.Text(), nullable=True))
    op.create_table('shop_tokens',
    sa.Column('shop_code', sa.String(length=64), nullable=False),
    sa.Column('store', sa.String(length=16), nullable=False),
    sa.Column('sealed', sa.Text(), nullable=True),
    sa.Column('access_expires_at', Time, nullable=True),
    sa.Column('refresh_expires_at', Time, nullable=True),
    sa.Column('issued_at', Time, nullable=True),
    sa.Column('refreshable', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('lease_holder', sa.String(length=64), nullable=True),
    sa.Column('lease_until', Time, nullable=True),
    sa.Column('last_refresh_at', Time, nullable=True),
    sa.Column('last_refresh_error', sa.Text(), nullable=True),
    sa.Column('updated_at', Time, nullable=False),
    sa.ForeignKeyConstraint(['shop_code'], ['shops.code'], name=op.f('fk_shop_tokens_shop_code_shops'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('shop_code', name=op.f('pk_shop_tokens'))
    )
    op.create_table('alert_incidents',
    sa.Column('id', Id, autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=48), nullable=False),
    sa.Column('subject', sa.String(length=128), nullable=False),
    sa.Column('open_key', sa.String(length=200), nullable=True),
    sa.Column('platform', sa.String(length=32), nullable=True),
    sa.Column('stage', sa.String(length=16), nullable=True),
    sa.Column('opened_at', Time, nullable=False),
    sa.Column('last_seen_at', Time, nullable=False),
    sa.Column('occurrences', sa.Integer(), nullable=False),
    sa.Column('detail', Json, nullable=True),
    sa.Column('resolved_at', Time, nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_incidents')),
    sa.UniqueConstraint('open_key', name=op.f('uq_alert_incidents_open_key'))
    )
    op.create_table('connector_health',
    sa.Column('shop_code', sa.String(length=64), nullable=False),
    sa.Column('last_probe_at', Time, nullable=True),
    sa.Column('last_probe_ok', sa.Boolean(), nullable=True),
    sa.Column('last_latency_ms', sa.Numeric(precision=10, scale=1), nullable=True),
    sa.Column('consecutive_failures', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_success_at', Time, nullable=True),
    sa.Column('last_fetch_at', Time, nullable=True),
    sa.Column('last_nonempty_fetch_at', Time, nullable=True),
    sa.Column('updated_at', Time, nullable=False),
    sa.ForeignKeyConstraint(['shop_code'], ['shops.code'], name=op.f('fk_connector_health_shop_code_shops'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('shop_code', name=op.f('pk_connector_health'))
    )


def downgrade() -> None:
    op.drop_table('connector_health')
    op.drop_table('alert_incidents')
    op.drop_table('shop_tokens')
    with op.batch_alter_table('shops', schema=None) as batch_op:
        batch_op.drop_column('sealed_secrets')
