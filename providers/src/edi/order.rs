//! A purchase order as OrderBridge publishes it: the fields of an 850 an ERP needs, as
//! plain data (serialized to JSON). Built only by [`read_850`](super::read_850).

use chrono::NaiveDate;
use serde::Serialize;

/// One purchase order: an 850 transaction set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PurchaseOrder {
    /// ISA13 of the interchange it came in.
    pub interchange_control_number: String,
    /// ISA06, trimmed.
    pub sender: String,
    /// ISA08, trimmed.
    pub receiver: String,
    /// ISA15 is `T`.
    pub test: bool,
    /// GS06 of its group.
    pub group_control_number: String,
    /// ST02.
    pub control_number: String,
    /// BEG01: `00` original, `01` cancellation, `05` replace, …
    pub purpose: String,
    /// BEG02: `SA` stand-alone, `NE` new order, `DS` drop ship, …
    pub order_type: String,
    /// BEG03: the buyer's PO number.
    pub number: String,
    /// BEG04: the release number.
    pub release: Option<String>,
    /// BEG05.
    pub date: NaiveDate,
    /// CUR02 of the heading's CUR.
    pub currency: Option<String>,
    /// The heading's REF segments.
    pub references: Vec<Reference>,
    /// The heading's DTM segments.
    pub dates: Vec<DateReference>,
    /// The heading's N1 loops.
    pub parties: Vec<Party>,
    /// The PO1 loops.
    pub lines: Vec<Line>,
    /// CTT, when sent.
    pub totals: Option<Totals>,
    /// The ST's position in the interchange.
    #[serde(skip)]
    pub(super) position: usize,
}

/// A REF: a reference number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reference {
    /// REF01: `DP` department, `IA` vendor number, `CO` customer order, …
    pub qualifier: String,
    /// REF02, or REF03 (its description) when REF02 is absent.
    pub value: String,
}

/// A DTM: a date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DateReference {
    /// DTM01: `002` delivery requested, `010` requested ship, `037` ship not before, …
    pub qualifier: String,
    /// DTM02.
    pub date: NaiveDate,
}

/// An N1 loop: a party and its address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Party {
    /// N101: `ST` ship-to, `BT` bill-to, `BY` buyer, `SF` ship-from, …
    pub entity: String,
    /// N102.
    pub name: Option<String>,
    /// N103: `92` assigned by buyer, `1` DUNS, `UL` GLN, …
    pub id_qualifier: Option<String>,
    /// N104.
    pub id: Option<String>,
    /// N301 and N302 of each N3, in order.
    pub address: Vec<String>,
    /// N401.
    pub city: Option<String>,
    /// N402.
    pub state: Option<String>,
    /// N403.
    pub postal_code: Option<String>,
    /// N404.
    pub country: Option<String>,
}

/// A PO1 loop: one line of the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line {
    /// PO101: the line's number, as the buyer assigned it.
    pub number: Option<String>,
    /// PO102, decimal text.
    pub quantity: Option<String>,
    /// PO103: `EA` each, `CA` case, …
    pub unit: Option<String>,
    /// PO104, decimal text.
    pub unit_price: Option<String>,
    /// PO105: `PE` price per each, `CT` contract, … (often blank).
    pub price_basis: Option<String>,
    /// PO106/PO107, PO108/PO109, …
    pub product_ids: Vec<ProductId>,
    /// PID05 of each PID after the PO1.
    pub descriptions: Vec<String>,
    /// The line's REF segments.
    pub references: Vec<Reference>,
    /// The line's DTM segments.
    pub dates: Vec<DateReference>,
    /// The line's N1 loops (a ship-to per line).
    pub parties: Vec<Party>,
}

/// A product id of a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProductId {
    /// `VP` vendor part, `BP` buyer part, `SK` SKU, `UP` UPC, `IN` buyer item, `EN` EAN, …
    pub qualifier: String,
    /// The id.
    pub id: String,
}

/// CTT: the totals the sender counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// CTT01: PO1 lines; checked.
    pub line_count: usize,
    /// CTT02: the hash total, as sent; not checked (see the module docs).
    pub hash_total: Option<String>,
}
