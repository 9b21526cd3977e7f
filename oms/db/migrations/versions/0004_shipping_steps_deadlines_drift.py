"""Warehouse steps, carrier choice, write-back retry times, ship-by deadlines, status
drift and interceptions; orders with a waybill whose parcel the carrier has not collected
become `packing` (they were `shipped` from the moment of the waybill before).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 17:40:00
"""

from alembic import op
import sqlalchemy as sa
import oms.db.schema
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ship_deadlines',
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('deadline', oms.db.schema.UTCDateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('rule', sa.String(length=64), nullable=True),
    sa.Column('stage', sa.String(length=16), nullable=False),
    sa.Column('warned_at', oms.db.schema.UTCDateTime(timezone=True), nullable=True),
    sa.Column('breached_at', oms.db.schema.UTCDateTime(timezone=True), nullable=True),
    sa.Column('settled_at', oms.db.schema.UTCDateTime(timezone=True), nullable=True),
    sa.Column('computed_at', oms.db.schema.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_ship_deadlines_order_id_orders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('order_id', name=op.f('pk_ship_deadlines'))
    )
    with op.batch_alter_table('ship_deadlines', schema=None) as batch_op:
        batch_op.create_index('ix_ship_deadlines_open', ['stage', 'deadline'], unique=False)

    op.create_table('status_drifts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=48), nullable=False),
    sa.Column('open_key', sa.String(length=80), nullable=True),
    sa.Column('our_status', sa.String(length=32), nullable=False),
    sa.Column('platform_status', sa.String(length=64), nullable=False),
    sa.Column('since', oms.db.schema.UTCDateTime(timezone=True), nullable=False),
    sa.Column('detected_at', oms.db.schema.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', oms.db.schema.UTCDateTime(timezone=True), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=True),
    sa.Column('detail', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('resolved_at', oms.db.schema.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_status_drifts_order_id_orders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_status_drifts')),
    sa.UniqueConstraint('open_key', name=op.f('uq_status_drifts_open_key'))
    )
    with op.batch_alter_table('status_drifts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_status_drifts_order_id'), ['order_id'], unique=False)

    op.create_table('interceptions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('shipment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('carrier', sa.String(length=16), nullable=False),
    sa.Column('tracking_number', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created_at', oms.db.schema.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', oms.db.schema.UTCDateTime(timezone=True), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_interceptions_order_id_orders')),
    sa.ForeignKeyConstraint(['shipment_id'], ['shipments.id'], name=op.f('fk_interceptions_shipment_id_shipments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_interceptions')),
    sa.UniqueConstraint('shipment_id', name=op.f('uq_interceptions_shipment_id'))
    )
    with op.batch_alter_table('interceptions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_interceptions_order_id'), ['order_id'], unique=False)

    op.create_table('shipment_steps',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('shipment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('step', sa.String(length=16), nullable=False),
    sa.Column('at', oms.db.schema.UTCDateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('station', sa.String(length=64), nullable=True),
    sa.Column('operator', sa.String(length=64), nullable=True),
    sa.Column('weight_grams', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['shipment_id'], ['shipments.id'], name=op.f('fk_shipment_steps_shipment_id_shipments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shipment_steps')),
    sa.UniqueConstraint('shipment_id', 'step', name=op.f('uq_shipment_steps_shipment_id_step'))
    )
    with op.batch_alter_table('shipments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('carrier_reason', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('waybill_source', sa.String(length=16), nullable=True))
        batch_op.drop_index('ix_shipments_tracking')
        batch_op.create_index('ix_shipments_tracking', ['tracking_number', 'carrier'], unique=False)
        batch_op.add_column(sa.Column('warehouse_step', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('weighed_grams', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('handed_over_at', oms.db.schema.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('next_push_at', oms.db.schema.UTCDateTime(timezone=True), nullable=True))
    op.execute("UPDATE orders SET status = 'packing' WHERE status = 'shipped' AND EXISTS ("
               "SELECT 1 FROM shipments s WHERE s.order_id = orders.id AND s.status = 'label_created')")



def downgrade() -> None:
    op.execute("UPDATE orders SET status = 'shipped' WHERE status = 'packing'")
    with op.batch_alter_table('shipments', schema=None) as batch_op:
        batch_op.drop_column('next_push_at')
        batch_op.drop_column('handed_over_at')
        batch_op.drop_column('weighed_grams')
        batch_op.drop_column('warehouse_step')
        batch_op.drop_column('waybill_source')
        batch_op.drop_column('carrier_reason')
        batch_op.drop_index('ix_shipments_tracking')
        batch_op.create_index('ix_shipments_tracking', ['carrier', 'tracking_number'], unique=False)

    op.drop_table('shipment_steps')
    with op.batch_alter_table('interceptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_interceptions_order_id'))

    op.drop_table('interceptions')
    with op.batch_alter_table('status_drifts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_status_drifts_order_id'))

    op.drop_table('status_drifts')
    with op.batch_alter_table('ship_deadlines', schema=None) as batch_op:
        batch_op.drop_index('ix_ship_deadlines_open')

    op.drop_table('ship_deadlines')
