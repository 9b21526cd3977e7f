"""After-sales requests (refunds, returns, exchanges), their audit trail and returned goods.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 18:50:00
"""

from alembic import op
import sqlalchemy as sa
import oms.db.schema
from sqlalchemy.dialects import postgresql

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('after_sales_requests',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('platform', sa.String(length=32), nullable=False),
    sa.Column('shop_code', sa.String(length=64), nullable=False),
    sa.Column('platform_request_id', sa.String(length=128), nullable=False),
    sa.Column('platform_order_id', sa.String(length=128), nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('platform_status', sa.String(length=64), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('approved_amount', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('reason_code', sa.String(length=64), nullable=True),
    sa.Column('reason_text', sa.Text(), nullable=True),
    sa.Column('lines', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('evidence', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('buyer_ref', sa.String(length=128), nullable=True),
    sa.Column('cross_border', sa.Boolean(), nullable=False),
    sa.Column('respond_by', oms.db.schema.UTCDateTime(timezone=True), nullable=True),
    sa.Column('platform_created_at', oms.db.schema.UTCDateTime(timezone=True), nullable=False),
    sa.Column('platform_updated_at', oms.db.schema.UTCDateTime(timezone=True), nullable=False),
    sa.Column('node', sa.String(length=48), nullable=True),
    sa.Column('flow_run_id', sa.String(length=64), nullable=True),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('received_at', oms.db.schema.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', oms.db.schema.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_after_sales_requests_order_id_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_after_sales_requests')),
    sa.UniqueConstraint('platform', 'shop_code', 'platform_request_id', name=op.f('uq_after_sales_requests_platform_shop_code_platform_request_id'))
    )
    with op.batch_alter_table('after_sales_requests', schema=None) as batch_op:
        batch_op.create_index('ix_after_sales_requests_order', ['order_id'], unique=False)
        batch_op.create_index('ix_after_sales_requests_status', ['status', 'respond_by'], unique=False)

    op.create_table('after_sales_audit',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('request_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', oms.db.schema.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=True),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('node', sa.String(length=48), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('input', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.ForeignKeyConstraint(['request_id'], ['after_sales_requests.id'], name=op.f('fk_after_sales_audit_request_id_after_sales_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_after_sales_audit'))
    )
    with op.batch_alter_table('after_sales_audit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_after_sales_audit_request_id'), ['request_id'], unique=False)

    op.create_table('returned_goods',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('request_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('order_line_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('sku', sa.String(length=128), nullable=False),
    sa.Column('warehouse_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('units', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('at', oms.db.schema.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('units > 0', name=op.f('ck_returned_goods_units_positive')),
    sa.CheckConstraint("outcome IN ('restocked', 'written_off')", name=op.f('ck_returned_goods_outcome_known')),
    sa.ForeignKeyConstraint(['order_line_id'], ['order_lines.id'], name=op.f('fk_returned_goods_order_line_id_order_lines')),
    sa.ForeignKeyConstraint(['request_id'], ['after_sales_requests.id'], name=op.f('fk_returned_goods_request_id_after_sales_requests'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['warehouse_id'], ['warehouses.id'], name=op.f('fk_returned_goods_warehouse_id_warehouses')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_returned_goods'))
    )
    with op.batch_alter_table('returned_goods', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_returned_goods_request_id'), ['request_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('returned_goods', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_returned_goods_request_id'))

    op.drop_table('returned_goods')
    with op.batch_alter_table('after_sales_audit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_after_sales_audit_request_id'))

    op.drop_table('after_sales_audit')
    with op.batch_alter_table('after_sales_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_after_sales_requests_status')
        batch_op.drop_index('ix_after_sales_requests_order')

    op.drop_table('after_sales_requests')
