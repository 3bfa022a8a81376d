//! `refunds/create`: the REST Refund resource
//! (<https://shopify.dev/docs/api/admin-rest/latest/resources/refund>), which names its order
//! by `order_id` and does not carry the order itself. It becomes a partial `REFUNDED` event:
//! the refund with its lines, in the currency of its transactions.
//!
//! The refunded amount is what the successful `refund` transactions returned; a refund with
//! no money moved (a restock only) falls back to the refunded lines' subtotal and tax.

use orderbridge_schemas::{EventType, OrderEvent, Refund, RefundLine};
use serde::Deserialize;

use super::super::common::{self, invalid, money, timestamp, trimmed, Amount, Id};
use super::super::{NormalizeError, RawRecord};

pub(super) fn refund_event(raw: &RawRecord<'_>) -> Result<OrderEvent, NormalizeError> {
    let refund: ShopifyRefund = common::parse(raw.body)?;
    let order_id = common::required_id(refund.order_id.as_ref(), "refund's order_id")?;
    let refund_id = common::required_id(refund.id.as_ref(), "refund's id")?;
    let (created_at, created_original) = timestamp("created_at", refund.created_at.as_deref())?;

    let returned: Vec<&Transaction> = refund
        .transactions
        .iter()
        .filter(|t| t.kind.as_deref() == Some("refund") && t.status.as_deref() == Some("success"))
        .collect();
    let currency = match returned.iter().find_map(|t| t.currency.as_deref()) {
        Some(code) => common::currency(Some(code))?,
        None => common::currency(refund.refund_line_items.iter().find_map(|l| {
            l.subtotal_set
                .as_ref()
                .map(|s| s.shop_money.currency_code.as_str())
        }))
        .map_err(|_| invalid("refund names no currency (no transaction, no subtotal_set)"))?,
    };

    let mut lines = Vec::with_capacity(refund.refund_line_items.len());
    for line in &refund.refund_line_items {
        let amount = common::add(
            "refund_line_items",
            money("refund_line_items.subtotal", line.subtotal.as_ref())?,
            money("refund_line_items.total_tax", line.total_tax.as_ref())?,
        )?;
        lines.push(RefundLine {
            line_id: line.line_item_id.as_ref().map(ToString::to_string),
            sku: line
                .line_item
                .as_ref()
                .and_then(|item| trimmed(item.sku.clone())),
            quantity: line
                .quantity
                .ok_or_else(|| invalid("a refund line has no quantity"))?,
            amount,
        });
    }
    let amount = if returned.is_empty() {
        common::sum("refund_line_items", lines.iter().map(|l| Ok(l.amount)))?
    } else {
        common::sum(
            "transactions.amount",
            returned
                .iter()
                .map(|t| money("transactions.amount", t.amount.as_ref())),
        )?
    };

    let mut event = common::event(raw, &order_id);
    event.event_type = EventType::Refunded;
    event.partial = true;
    event.currency = currency;
    // A refund is a change of the order at its creation time; later order updates carry a
    // later updated_at, so they still order after it.
    event.version = common::version(created_at, raw);
    event.source_updated_at = created_at;
    event.source_updated_at_original = created_original;
    event.refund = Some(Refund {
        refund_id,
        amount,
        reason: trimmed(refund.note),
        lines,
    });
    Ok(event)
}

#[derive(Debug, Deserialize)]
struct ShopifyRefund {
    id: Option<Id>,
    order_id: Option<Id>,
    created_at: Option<String>,
    note: Option<String>,
    #[serde(default)]
    refund_line_items: Vec<RefundLineItem>,
    #[serde(default)]
    transactions: Vec<Transaction>,
}

#[derive(Debug, Deserialize)]
struct RefundLineItem {
    line_item_id: Option<Id>,
    quantity: Option<i64>,
    subtotal: Option<Amount>,
    total_tax: Option<Amount>,
    subtotal_set: Option<MoneySet>,
    line_item: Option<RefundedItem>,
}

#[derive(Debug, Deserialize)]
struct RefundedItem {
    sku: Option<String>,
}

#[derive(Debug, Deserialize)]
struct MoneySet {
    shop_money: Money,
}

#[derive(Debug, Deserialize)]
struct Money {
    currency_code: String,
}

#[derive(Debug, Deserialize)]
struct Transaction {
    amount: Option<Amount>,
    currency: Option<String>,
    kind: Option<String>,
    status: Option<String>,
}
