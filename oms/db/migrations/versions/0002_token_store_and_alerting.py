"""Token store, alert incidents and connector health; shop secrets sealed out of `credentials`.

Shops saved before this revision kept tokens and app secrets in plain JSON: the upgrade
seals them (with the key of OMS_TOKEN_KEY, or the key file) into `shops.sealed_secrets`
and `shop_tokens`, leaving identifiers in `credentials`. The downgrade puts them back.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 02:00:00
"""

from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa
import oms.db.schema
from sqlalchemy.dialects import postgresql

from oms.domain.tokens import ShopTokens, split_credentials, tokens_from_credentials
from oms.sealing import SealBroken, seal, unseal

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
    _seal_existing_credentials()


def _seal_existing_credentials() -> None:
    conn = op.get_bind()
    shops = sa.table('shops', sa.column('code', sa.String), sa.column('platform', sa.String),
                     sa.column('credentials', Json), sa.column('sealed_secrets', sa.Text))
    tokens_table = sa.table('shop_tokens', *(sa.column(name) for name in (
        'shop_code', 'store', 'sealed', 'access_expires_at', 'refresh_expires_at', 'issued_at',
        'refreshable', 'version', 'updated_at')))
    now = datetime.now(timezone.utc)
    for code, platform, credentials in conn.execute(sa.select(shops.c.code, shops.c.platform, shops.c.credentials)).all():
        identifiers, secrets, token_fields = split_credentials(dict(credentials or {}))
        if not secrets and not token_fields:
            continue
        conn.execute(sa.update(shops).where(shops.c.code == code).values(
            credentials=identifiers, sealed_secrets=seal(secrets) if secrets else None))
        if token_fields:
            tokens = tokens_from_credentials(platform, token_fields, now)
            conn.execute(sa.insert(tokens_table).values(
                shop_code=code, store='database', sealed=seal(tokens.to_json()),
                access_expires_at=_stored_time(conn, tokens.access_expires_at),
                refresh_expires_at=_stored_time(conn, tokens.refresh_expires_at),
                issued_at=_stored_time(conn, now), refreshable=tokens.can_refresh, version=1,
                updated_at=_stored_time(conn, now)))


def _stored_time(conn, value):
    """As UTCDateTime stores it: naive UTC on SQLite, aware elsewhere."""
    if value is None or conn.dialect.name != 'sqlite':
        return value
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def _unseal_credentials() -> None:
    """Put sealed secrets and database-held tokens back in `credentials`; tokens held in
    Prefect Secret blocks stay there."""
    conn = op.get_bind()
    shops = sa.table('shops', sa.column('code', sa.String), sa.column('credentials', Json),
                     sa.column('sealed_secrets', sa.Text))
    tokens_table = sa.table('shop_tokens', sa.column('shop_code', sa.String), sa.column('sealed', sa.Text))
    query = sa.select(shops.c.code, shops.c.credentials, shops.c.sealed_secrets, tokens_table.c.sealed).select_from(
        shops.outerjoin(tokens_table, tokens_table.c.shop_code == shops.c.code))
    for code, credentials, sealed_secrets, sealed_tokens in conn.execute(query).all():
        plain = dict(credentials or {})
        try:
            if sealed_secrets:
                plain.update(unseal(sealed_secrets))
            if sealed_tokens:
                held = ShopTokens.from_json(unseal(sealed_tokens)).to_json()
                plain.update({k: v for k, v in held.items() if v and k != 'issued_at'})
        except SealBroken as error:
            raise SealBroken(f"shop {code}: {error}; set OMS_TOKEN_KEY to the key that sealed "
                             "it before downgrading, or its secrets would be lost") from None
        conn.execute(sa.update(shops).where(shops.c.code == code).values(credentials=plain))


def downgrade() -> None:
    _unseal_credentials()
    op.drop_table('connector_health')
    op.drop_table('alert_incidents')
    op.drop_table('shop_tokens')
    with op.batch_alter_table('shops', schema=None) as batch_op:
        batch_op.drop_column('sealed_secrets')
