"""Reservations held, locked, consumed or released; routing decisions, capacity, audits
and platform listings.

Reservations that were `active` become `held`. A line may now be reserved in several
warehouses (a split), and an order may have a shipment per warehouse or share one parcel
with other orders, so the unique keys move accordingly.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 05:30:00
"""

from alembic import op
import sqlalchemy as sa
import oms.db.schema
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
Time = oms.db.schema.UTCDateTime(timezone=True)
Json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    with op.batch_alter_table('skus') as batch_op:
        batch_op.add_column(sa.Column('reorder_point', sa.Integer(), nullable=True))
    with op.batch_alter_table('stock') as batch_op:
        batch_op.add_column(sa.Column('updated_at', Time, nullable=True))
    with op.batch_alter_table('orders') as batch_op:
        batch_op.add_column(sa.Column('merge_key', sa.String(length=40), nullable=True))
        batch_op.create_index('ix_orders_merge_key', ['merge_key'], unique=False)

    op.execute("UPDATE reservations SET state = 'held' WHERE state = 'active'")
    with op.batch_alter_table('reservations') as batch_op:
        batch_op.add_column(sa.Column('hold_until', Time, nullable=True))
        batch_op.add_column(sa.Column('locked_at', Time, nullable=True))
        batch_op.add_column(sa.Column('close_reason', sa.String(length=32), nullable=True))
        batch_op.drop_constraint('uq_reservations_order_line_id', type_='unique')
        batch_op.create_unique_constraint(
            batch_op.f('uq_reservations_order_line_id_warehouse_id'), ['order_line_id', 'warehouse_id'])
        batch_op.create_check_constraint(
            'ck_reservations_state_known', "state IN ('held', 'locked', 'consumed', 'released')")
        batch_op.create_index('ix_reservations_open', ['state', 'warehouse_id', 'sku_id'], unique=False)

    with op.batch_alter_table('shipments') as batch_op:
        batch_op.add_column(sa.Column('parcel_ref', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('writes_back', sa.Boolean(), nullable=False, server_default=sa.true()))
        batch_op.add_column(sa.Column('picked_up_at', Time, nullable=True))
        batch_op.add_column(sa.Column('cancel_requested_at', Time, nullable=True))
        batch_op.add_column(sa.Column('voided_at', Time, nullable=True))
        batch_op.add_column(sa.Column('carrier_cancelled_at', Time, nullable=True))
        batch_op.drop_constraint('uq_shipments_order_id', type_='unique')
        batch_op.drop_constraint('uq_shipments_carrier_tracking_number', type_='unique')
        batch_op.create_unique_constraint(
            batch_op.f('uq_shipments_order_id_warehouse_id'), ['order_id', 'warehouse_id'])
        batch_op.create_index('ix_shipments_tracking', ['carrier', 'tracking_number'], unique=False)
        batch_op.create_index('ix_shipments_status', ['status'], unique=False)

    op.create_table('warehouse_days',
    sa.Column('warehouse_id', Id, nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('parcels', sa.Integer(), nullable=False),
    sa.CheckConstraint('parcels >= 0', name=op.f('ck_warehouse_days_parcels_not_negative')),
    sa.ForeignKeyConstraint(['warehouse_id'], ['warehouses.id'], name=op.f('fk_warehouse_days_warehouse_id_warehouses')),
    sa.PrimaryKeyConstraint('warehouse_id', 'day', name=op.f('pk_warehouse_days'))
    )
    op.create_table('order_routing',
    sa.Column('order_id', Id, nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('parcels', Json, nullable=False),
    sa.Column('explanation', Json, nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('short', Json, nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('first_decided_at', Time, nullable=False),
    sa.Column('decided_at', Time, nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_routing_order_id_orders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('order_id', name=op.f('pk_order_routing'))
    )
    op.create_index('ix_order_routing_outcome', 'order_routing', ['outcome'], unique=False)
    op.create_table('stock_audits',
    sa.Column('id', Id, autoincrement=True, nullable=False),
    sa.Column('run_at', Time, nullable=False),
    sa.Column('warehouse_id', Id, nullable=False),
    sa.Column('sku_id', Id, nullable=False),
    sa.Column('recorded_reserved', sa.Integer(), nullable=False),
    sa.Column('actual_reserved', sa.Integer(), nullable=False),
    sa.Column('on_hand', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['sku_id'], ['skus.id'], name=op.f('fk_stock_audits_sku_id_skus')),
    sa.ForeignKeyConstraint(['warehouse_id'], ['warehouses.id'], name=op.f('fk_stock_audits_warehouse_id_warehouses')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stock_audits'))
    )
    op.create_index(op.f('ix_stock_audits_run_at'), 'stock_audits', ['run_at'], unique=False)
    op.create_table('listings',
    sa.Column('id', Id, autoincrement=True, nullable=False),
    sa.Column('shop_code', sa.String(length=64), nullable=False),
    sa.Column('sku', sa.String(length=128), nullable=False),
    sa.Column('item_id', sa.String(length=128), nullable=False),
    sa.Column('variant_id', sa.String(length=128), nullable=False),
    sa.Column('location_id', sa.String(length=128), nullable=False),
    sa.Column('product_type', sa.String(length=64), nullable=False),
    sa.Column('platform_quantity', sa.Integer(), nullable=True),
    sa.Column('pushed_quantity', sa.Integer(), nullable=True),
    sa.Column('pushed_at', Time, nullable=True),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('seen_at', Time, nullable=False),
    sa.ForeignKeyConstraint(['shop_code'], ['shops.code'], name=op.f('fk_listings_shop_code_shops'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_listings')),
    sa.UniqueConstraint('shop_code', 'item_id', 'variant_id', 'location_id',
                        name=op.f('uq_listings_shop_code_item_id_variant_id_location_id'))
    )
    op.create_index('ix_listings_sku', 'listings', ['sku'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_listings_sku', table_name='listings')
    op.drop_table('listings')
    op.drop_index(op.f('ix_stock_audits_run_at'), table_name='stock_audits')
    op.drop_table('stock_audits')
    op.drop_index('ix_order_routing_outcome', table_name='order_routing')
    op.drop_table('order_routing')
    op.drop_table('warehouse_days')
    # Shipments of merged or split parcels have no place in the old keys: keep one per order.
    op.execute("DELETE FROM shipments WHERE writes_back = false AND id NOT IN "
               "(SELECT min(id) FROM shipments GROUP BY order_id)")
    with op.batch_alter_table('shipments') as batch_op:
        batch_op.drop_index('ix_shipments_status')
        batch_op.drop_index('ix_shipments_tracking')
        batch_op.drop_constraint('uq_shipments_order_id_warehouse_id', type_='unique')
        batch_op.create_unique_constraint('uq_shipments_order_id', ['order_id'])
        batch_op.create_unique_constraint('uq_shipments_carrier_tracking_number', ['carrier', 'tracking_number'])
        for column in ('carrier_cancelled_at', 'voided_at', 'cancel_requested_at', 'picked_up_at',
                       'writes_back', 'parcel_ref'):
            batch_op.drop_column(column)
    with op.batch_alter_table('reservations') as batch_op:
        batch_op.drop_index('ix_reservations_open')
        batch_op.drop_constraint('ck_reservations_state_known', type_='check')
        batch_op.drop_constraint('uq_reservations_order_line_id_warehouse_id', type_='unique')
        batch_op.create_unique_constraint('uq_reservations_order_line_id', ['order_line_id'])
        for column in ('close_reason', 'locked_at', 'hold_until'):
            batch_op.drop_column(column)
    op.execute("UPDATE reservations SET state = 'active' WHERE state IN ('held', 'locked')")
    with op.batch_alter_table('stock') as batch_op:
        batch_op.drop_column('updated_at')
    with op.batch_alter_table('orders') as batch_op:
        batch_op.drop_index('ix_orders_merge_key')
        batch_op.drop_column('merge_key')
    with op.batch_alter_table('skus') as batch_op:
        batch_op.drop_column('reorder_point')
