"""Initial schema: shops, raw landing zone, orders, stock, shipments, tracking pushes, watermarks.

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 04:30:25.848461
"""

from alembic import op
import sqlalchemy as sa
import oms.db.schema
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('raw_orders',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('platform', sa.String(length=32), nullable=False),
    sa.Column('shop_code', sa.String(length=64), nullable=False),
    sa.Column('platform_order_id', sa.String(length=128), nullable=False),
    sa.Column('platform_updated_at', oms.db.schema.UTCDateTime(timezone=True), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('received_at', oms.db.schema.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_raw_orders')),
    sa.UniqueConstraint('platform', 'shop_code', 'platform_order_id', 'platform_updated_at', name=op.f('uq_raw_orders_platform_shop_code_platform_order_id_platform_updated_at'))
    )
    op.create_table('review_queue',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('stage', sa.String(length=32), nullable=False),
    sa.Column('platform', sa.String(length=32), nullable=False),
    sa.Column('shop_code', sa.String(length=64), nullable=False),
    sa.Column('platform_order_id', sa.String(length=128), nullable=True),
    sa.Column('reasons', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', oms.db.schema.UTCDateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', oms.db.schema.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolution', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review_queue')),
    sa.UniqueConstraint('fingerprint', name=op.f('uq_review_queue_fingerprint'))
    )
    with op.batch_alter_table('review_queue', schema=None) as batch_op:
        batch_op.create_index('ix_review_queue_open', ['resolved_at', 'stage'], unique=False)

    op.create_table('shops',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('platform', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('base_url', sa.String(length=500), nullable=False),
    sa.Column('credentials', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', oms.db.schema.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shops')),
    sa.UniqueConstraint('code', name=op.f('uq_shops_code'))
    )
    op.create_table('skus',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('code', sa.String(length=128), nullable=False),
    sa.Column('title', sa.String(length=500), nullable=False),
    sa.Column('weight_grams', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_skus')),
    sa.UniqueConstraint('code', name=op.f('uq_skus_code'))
    )
    op.create_table('sync_watermarks',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('shop_code', sa.String(length=64), nullable=False),
    sa.Column('stream', sa.String(length=32), nullable=False),
    sa.Column('watermark', oms.db.schema.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', oms.db.schema.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_watermarks')),
    sa.UniqueConstraint('shop_code', 'stream', name=op.f('uq_sync_watermarks_shop_code_stream'))
    )
    op.create_table('warehouses',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('province', sa.String(length=64), nullable=True),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_warehouses')),
    sa.UniqueConstraint('code', name=op.f('uq_warehouses_code'))
    )
    op.create_table('orders',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('platform', sa.String(length=32), nullable=False),
    sa.Column('shop_code', sa.String(length=64), nullable=False),
    sa.Column('platform_order_id', sa.String(length=128), nullable=False),
    sa.Column('platform_status', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('created_at', oms.db.schema.UTCDateTime(timezone=True), nullable=False),
    sa.Column('platform_updated_at', oms.db.schema.UTCDateTime(timezone=True), nullable=False),
    sa.Column('paid_at', oms.db.schema.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ship_by', oms.db.schema.UTCDateTime(timezone=True), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('total_amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('shipping_fee', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('receiver_name', sa.String(length=200), nullable=True),
    sa.Column('receiver_phone', sa.String(length=64), nullable=True),
    sa.Column('receiver_province', sa.String(length=64), nullable=True),
    sa.Column('receiver_city', sa.String(length=64), nullable=True),
    sa.Column('receiver_district', sa.String(length=64), nullable=True),
    sa.Column('receiver_address', sa.Text(), nullable=True),
    sa.Column('receiver_postal_code', sa.String(length=16), nullable=True),
    sa.Column('receiver_country', sa.String(length=2), nullable=False),
    sa.Column('receiver_masked', sa.Boolean(), nullable=False),
    sa.Column('receiver_encrypted', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('buyer_ref', sa.String(length=128), nullable=True),
    sa.Column('buyer_note', sa.Text(), nullable=True),
    sa.Column('warehouse_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('raw_order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('first_seen_at', oms.db.schema.UTCDateTime(timezone=True), nullable=False),
    sa.Column('modified_at', oms.db.schema.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['raw_order_id'], ['raw_orders.id'], name=op.f('fk_orders_raw_order_id_raw_orders')),
    sa.ForeignKeyConstraint(['warehouse_id'], ['warehouses.id'], name=op.f('fk_orders_warehouse_id_warehouses')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orders')),
    sa.UniqueConstraint('platform', 'shop_code', 'platform_order_id', name=op.f('uq_orders_platform_shop_code_platform_order_id'))
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index('ix_orders_status_paid_at', ['status', 'paid_at'], unique=False)

    op.create_table('stock',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('warehouse_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('sku_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('on_hand', sa.Integer(), nullable=False),
    sa.Column('reserved', sa.Integer(), nullable=False),
    sa.Column('safety_stock', sa.Integer(), nullable=False),
    sa.CheckConstraint('on_hand >= 0', name=op.f('ck_stock_on_hand_not_negative')),
    sa.CheckConstraint('reserved >= 0', name=op.f('ck_stock_reserved_not_negative')),
    sa.ForeignKeyConstraint(['sku_id'], ['skus.id'], name=op.f('fk_stock_sku_id_skus')),
    sa.ForeignKeyConstraint(['warehouse_id'], ['warehouses.id'], name=op.f('fk_stock_warehouse_id_warehouses')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stock')),
    sa.UniqueConstraint('warehouse_id', 'sku_id', name=op.f('uq_stock_warehouse_id_sku_id'))
    )
    op.create_table('order_lines',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('platform_line_id', sa.String(length=128), nullable=True),
    sa.Column('sku', sa.String(length=128), nullable=False),
    sa.Column('title', sa.String(length=500), nullable=True),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('unit_price', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_order_lines_quantity_positive')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_lines_order_id_orders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_lines')),
    sa.UniqueConstraint('order_id', 'line_no', name=op.f('uq_order_lines_order_id_line_no'))
    )
    op.create_table('order_status_history',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('from_status', sa.String(length=32), nullable=True),
    sa.Column('to_status', sa.String(length=32), nullable=False),
    sa.Column('at', oms.db.schema.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_status_history_order_id_orders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_status_history'))
    )
    with op.batch_alter_table('order_status_history', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_status_history_order_id'), ['order_id'], unique=False)

    op.create_table('shipments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('warehouse_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('carrier', sa.String(length=16), nullable=False),
    sa.Column('tracking_number', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', oms.db.schema.UTCDateTime(timezone=True), nullable=False),
    sa.Column('tracking_pushed_at', oms.db.schema.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_shipments_order_id_orders')),
    sa.ForeignKeyConstraint(['warehouse_id'], ['warehouses.id'], name=op.f('fk_shipments_warehouse_id_warehouses')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shipments')),
    sa.UniqueConstraint('carrier', 'tracking_number', name=op.f('uq_shipments_carrier_tracking_number')),
    sa.UniqueConstraint('order_id', name=op.f('uq_shipments_order_id'))
    )
    op.create_table('reservations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('order_line_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('warehouse_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('sku_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created_at', oms.db.schema.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', oms.db.schema.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_reservations_quantity_positive')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_reservations_order_id_orders'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['order_line_id'], ['order_lines.id'], name=op.f('fk_reservations_order_line_id_order_lines'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['sku_id'], ['skus.id'], name=op.f('fk_reservations_sku_id_skus')),
    sa.ForeignKeyConstraint(['warehouse_id'], ['warehouses.id'], name=op.f('fk_reservations_warehouse_id_warehouses')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reservations')),
    sa.UniqueConstraint('order_line_id', name=op.f('uq_reservations_order_line_id'))
    )
    with op.batch_alter_table('reservations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reservations_order_id'), ['order_id'], unique=False)

    op.create_table('tracking_pushes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('shipment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('platform', sa.String(length=32), nullable=False),
    sa.Column('shop_code', sa.String(length=64), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('request', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('response', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('at', oms.db.schema.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['shipment_id'], ['shipments.id'], name=op.f('fk_tracking_pushes_shipment_id_shipments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tracking_pushes'))
    )
    with op.batch_alter_table('tracking_pushes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tracking_pushes_shipment_id'), ['shipment_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('tracking_pushes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tracking_pushes_shipment_id'))

    op.drop_table('tracking_pushes')
    with op.batch_alter_table('reservations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reservations_order_id'))

    op.drop_table('reservations')
    op.drop_table('shipments')
    with op.batch_alter_table('order_status_history', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_status_history_order_id'))

    op.drop_table('order_status_history')
    op.drop_table('order_lines')
    op.drop_table('stock')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ix_orders_status_paid_at')

    op.drop_table('orders')
    op.drop_table('warehouses')
    op.drop_table('sync_watermarks')
    op.drop_table('skus')
    op.drop_table('shops')
    with op.batch_alter_table('review_queue', schema=None) as batch_op:
        batch_op.drop_index('ix_review_queue_open')

    op.drop_table('review_queue')
    op.drop_table('raw_orders')
