// The "add a queue" baseline: what a team following an attribution platform's integration
// guide ("if your ERP is slow, add a queue between webhook receiver and ERP push") would
// write. One Node process: an Express receiver verifies Shopify's HMAC on the raw body with
// timingSafeEqual, enqueues the order on Bull (Redis) and answers 200 once Redis has the job;
// a Bull worker in the same process upserts each job into the same SQLite staging tables
// (`orders`, `order_lines`) as OrderBridge's SQL sink, in one transaction per order.
//
//   REDIS_URL=redis://127.0.0.1:6390 DB=/tmp/bull.db SECRET=… PORT=3000 node server.js
'use strict';
const crypto = require('node:crypto');
const express = require('express');
const Queue = require('bull');
const Database = require('better-sqlite3');

const { PORT, SECRET, REDIS_URL, DB } = process.env;

// Copied from the Rust sink (sink/src/erp/sql/schema.rs) so both write the same target.
const CREATE_ORDERS = `CREATE TABLE IF NOT EXISTS orders (
    order_key TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    account TEXT NOT NULL,
    source_order_id TEXT NOT NULL,
    order_number TEXT,
    event_type TEXT NOT NULL,
    status TEXT NOT NULL,
    payment_status TEXT NOT NULL,
    version BIGINT NOT NULL,
    currency TEXT NOT NULL,
    total TEXT NOT NULL,
    subtotal TEXT NOT NULL,
    tax TEXT NOT NULL,
    shipping TEXT NOT NULL,
    discount TEXT NOT NULL,
    customer_id TEXT,
    customer_email TEXT,
    customer_name TEXT,
    ship_to_name TEXT,
    ship_to_line1 TEXT,
    ship_to_city TEXT,
    ship_to_postal_code TEXT,
    ship_to_country_code TEXT,
    source_created_at TEXT,
    source_updated_at TEXT,
    raw_topic TEXT NOT NULL,
    raw_partition INTEGER NOT NULL,
    raw_offset BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    received_at TEXT NOT NULL,
    applied_at TEXT NOT NULL,
    first_touch_channel TEXT,
    first_touch_campaign TEXT,
    first_touch_source TEXT,
    first_touch_medium TEXT,
    last_touch_channel TEXT,
    last_touch_campaign TEXT,
    last_touch_source TEXT,
    last_touch_medium TEXT
)`;

const CREATE_LINES = `CREATE TABLE IF NOT EXISTS order_lines (
    order_key TEXT NOT NULL REFERENCES orders (order_key),
    line_no INTEGER NOT NULL,
    line_id TEXT,
    sku TEXT,
    title TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    unit_price TEXT NOT NULL,
    discount TEXT NOT NULL,
    tax TEXT NOT NULL,
    PRIMARY KEY (order_key, line_no)
)`;

// An older event (lower version) must not regress an order.
const UPSERT_ORDER = `INSERT INTO orders (
    order_key, source, account, source_order_id, order_number, event_type, status, payment_status,
    version, currency, total, subtotal, tax, shipping, discount, customer_id, customer_email,
    customer_name, ship_to_name, ship_to_line1, ship_to_city, ship_to_postal_code,
    ship_to_country_code, source_created_at, source_updated_at, raw_topic, raw_partition,
    raw_offset, event_id, received_at, applied_at
) VALUES (
    @order_key, @source, @account, @source_order_id, @order_number, @event_type, @status,
    @payment_status, @version, @currency, @total, @subtotal, @tax, @shipping, @discount,
    @customer_id, @customer_email, @customer_name, @ship_to_name, @ship_to_line1, @ship_to_city,
    @ship_to_postal_code, @ship_to_country_code, @source_created_at, @source_updated_at,
    @raw_topic, @raw_partition, @raw_offset, @event_id, @received_at, @applied_at
)
ON CONFLICT(order_key) DO UPDATE SET
    order_number = excluded.order_number, event_type = excluded.event_type,
    status = excluded.status, payment_status = excluded.payment_status,
    version = excluded.version, currency = excluded.currency, total = excluded.total,
    subtotal = excluded.subtotal, tax = excluded.tax, shipping = excluded.shipping,
    discount = excluded.discount, customer_id = excluded.customer_id,
    customer_email = excluded.customer_email, customer_name = excluded.customer_name,
    ship_to_name = excluded.ship_to_name, ship_to_line1 = excluded.ship_to_line1,
    ship_to_city = excluded.ship_to_city, ship_to_postal_code = excluded.ship_to_postal_code,
    ship_to_country_code = excluded.ship_to_country_code,
    source_created_at = excluded.source_created_at, source_updated_at = excluded.source_updated_at,
    raw_topic = excluded.raw_topic, raw_partition = excluded.raw_partition,
    raw_offset = excluded.raw_offset, event_id = excluded.event_id,
    received_at = excluded.received_at, applied_at = excluded.applied_at
WHERE excluded.version >= orders.version`;

const DELETE_LINES = 'DELETE FROM order_lines WHERE order_key = ?';
const INSERT_LINE = `INSERT INTO order_lines
    (order_key, line_no, line_id, sku, title, quantity, unit_price, discount, tax)
    VALUES (@order_key, @line_no, @line_id, @sku, @title, @quantity, @unit_price, @discount, @tax)`;

const EVENT_TYPES = { 'orders/create': 'created', 'orders/updated': 'updated', 'orders/cancelled': 'cancelled' };

// --- the staging database: opened once, statements prepared once ---------------------------
const db = new Database(DB);
db.pragma('journal_mode = WAL'); // like the Rust sink
// Every commit fsynced, as the Rust sink's are. (better-sqlite3 is built with
// SQLITE_DEFAULT_WAL_SYNCHRONOUS=1: a database already in WAL mode would otherwise open with
// synchronous = NORMAL, whose last commits a power loss can take back.)
db.pragma('synchronous = FULL');
db.exec(CREATE_ORDERS);
db.exec(CREATE_LINES);
const upsertOrder = db.prepare(UPSERT_ORDER);
const deleteLines = db.prepare(DELETE_LINES);
const insertLine = db.prepare(INSERT_LINE);

const money = (value) => (value == null || value === '' ? '0.00' : String(value));
const orNull = (value) => (value == null || value === '' ? null : String(value));

// Sum of decimal strings, in cents so 0.1 + 0.2 stays 0.30.
function sumMoney(values) {
  const cents = values.reduce((acc, v) => acc + Math.round(Number(v || 0) * 100), 0);
  return (cents / 100).toFixed(2);
}

const applyOrder = db.transaction((row, lines) => {
  const { changes } = upsertOrder.run(row);
  if (changes === 0) return; // stale: a newer version is already staged
  deleteLines.run(row.order_key);
  for (const line of lines) insertLine.run(line);
});

async function syncOrderToErp(job) {
  const { shop, topic, webhookId, receivedAt, order } = job.data;
  const orderKey = `shopify:${shop}:${order.id}`;
  const customer = order.customer || {};
  const ship = order.shipping_address || {};
  const customerName = [customer.first_name, customer.last_name].filter(Boolean).join(' ');
  const row = {
    order_key: orderKey,
    source: 'shopify',
    account: shop,
    source_order_id: String(order.id),
    order_number: orNull(order.name),
    event_type: EVENT_TYPES[topic] || 'created',
    status: order.cancelled_at ? 'cancelled' : 'open',
    payment_status: order.financial_status ?? 'unknown',
    version: Date.parse(order.updated_at) || 0,
    currency: order.currency ?? '',
    total: money(order.total_price),
    subtotal: money(order.subtotal_price),
    tax: money(order.total_tax),
    shipping: money(order.total_shipping_price_set?.shop_money?.amount),
    discount: money(order.total_discounts),
    customer_id: customer.id == null ? null : String(customer.id),
    customer_email: orNull(customer.email),
    customer_name: customerName || null,
    ship_to_name: orNull(ship.name),
    ship_to_line1: orNull(ship.address1),
    ship_to_city: orNull(ship.city),
    ship_to_postal_code: orNull(ship.zip),
    ship_to_country_code: orNull(ship.country_code),
    source_created_at: orNull(order.created_at),
    source_updated_at: orNull(order.updated_at),
    raw_topic: 'bull:orders-to-erp',
    raw_partition: 0,
    raw_offset: Number(job.id),
    event_id: webhookId ?? String(job.id),
    received_at: receivedAt,
    applied_at: new Date().toISOString(),
  };
  const lines = (order.line_items || []).map((item, i) => ({
    order_key: orderKey,
    line_no: i + 1,
    line_id: item.id == null ? null : String(item.id),
    sku: orNull(item.sku),
    title: item.title ?? '',
    quantity: item.quantity ?? 0,
    unit_price: money(item.price),
    discount: money(item.total_discount),
    tax: sumMoney((item.tax_lines || []).map((t) => t.price)),
  }));
  applyOrder(row, lines);
}

// --- the queue ------------------------------------------------------------------------------
const orderQueue = new Queue('orders-to-erp', REDIS_URL);
orderQueue.on('failed', (job, err) => console.error(`job ${job.id} failed:`, err.message));
orderQueue.on('error', (err) => console.error('queue error:', err.message));

// --- the receiver ---------------------------------------------------------------------------
function verify(rawBody, signature) {
  const expected = crypto.createHmac('sha256', SECRET).update(rawBody).digest('base64');
  try {
    return crypto.timingSafeEqual(Buffer.from(signature || ''), Buffer.from(expected));
  } catch {
    return false; // length mismatch
  }
}

const app = express();
app.post('/webhooks/shopify', express.raw({ type: '*/*', limit: '1mb' }), async (req, res) => {
  const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
  if (!verify(body, req.get('x-shopify-hmac-sha256'))) {
    return res.status(401).send('Invalid signature');
  }
  let order;
  try {
    order = JSON.parse(body.toString('utf8'));
  } catch {
    return res.status(400).send('Body is not JSON');
  }
  try {
    await orderQueue.add(
      {
        shop: req.get('x-shopify-shop-domain'),
        topic: req.get('x-shopify-topic'),
        webhookId: req.get('x-shopify-webhook-id'),
        receivedAt: new Date().toISOString(),
        order,
      },
      { removeOnComplete: true },
    );
    return res.status(200).end();
  } catch (err) {
    console.error('enqueue failed:', err.message);
    return res.status(500).end();
  }
});

let server;
async function shutdown() {
  if (shutdown.started) return;
  shutdown.started = true;
  try {
    if (server) await new Promise((resolve) => server.close(() => resolve()));
    await orderQueue.close(); // waits for the job in progress
    db.close();
    process.exit(0);
  } catch (err) {
    console.error('shutdown failed:', err.message);
    process.exit(1);
  }
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

orderQueue
  .isReady()
  .then(() => {
    // Bull's default concurrency, 1: better-sqlite3 is synchronous anyway. The promise
    // settles only when the worker stops, so it is not awaited.
    orderQueue.process(async (job) => syncOrderToErp(job)).catch((err) => {
      console.error('worker stopped:', err.message);
    });
    server = app.listen(Number(PORT), '127.0.0.1', () => console.log(`bull baseline listening on ${PORT}`));
  })
  .catch((err) => {
    console.error('cannot connect to Redis:', err.message);
    process.exit(1);
  });
