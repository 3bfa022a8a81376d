//! The 850 Purchase Order: segments to a [`PurchaseOrder`].
//!
//! Read leniently, mapped strictly: segments this reader does not use are skipped wherever
//! they are, but the ones it does use must be well formed, because a line read wrong is
//! worse than an order rejected (the partner learns of a rejection from the 997 and fixes
//! it; nobody learns of a wrong quantity until it ships).

use chrono::NaiveDate;
use serde::Serialize;

use super::envelope::{self, number, Interchange, PartnerId, Set};
use super::error::{ElementFault, Envelope, X12Error};
use super::order::{DateReference, Line, Party, ProductId, PurchaseOrder, Reference, Totals};
use super::segments::{Delimiters, Segment};

/// The longest decimal accepted, in digits: more than any price or quantity needs, and
/// within what a 96-bit decimal holds.
const MAX_DIGITS: usize = 20;

/// An interchange of purchase orders, as read by [`read_850`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Interchange850 {
    /// ISA13.
    pub control_number: String,
    /// ISA05/ISA06: who sent it.
    pub sender: PartnerId,
    /// ISA07/ISA08: who it is for.
    pub receiver: PartnerId,
    /// ISA12, `00401` or `00501`.
    pub version: String,
    /// ISA15 is `T`: test data, not to be fulfilled.
    pub test: bool,
    /// The functional groups, in the order sent.
    pub groups: Vec<Group850>,
    /// The interchange's syntax characters, for the 997 that answers it.
    #[serde(skip)]
    pub delimiters: Delimiters,
}

impl Interchange850 {
    /// Every accepted purchase order, in the order sent.
    pub fn orders(&self) -> impl Iterator<Item = &PurchaseOrder> {
        self.groups.iter().flat_map(|group| &group.orders)
    }

    /// Every rejected transaction set, in the order sent.
    pub fn rejected(&self) -> impl Iterator<Item = &RejectedSet> {
        self.groups.iter().flat_map(|group| &group.rejected)
    }
}

/// A functional group (GS … GE).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group850 {
    /// GS01: `PO` for purchase orders.
    pub functional_id: String,
    /// GS06.
    pub control_number: String,
    /// GS02, the application sender.
    pub sender: String,
    /// GS03, the application receiver.
    pub receiver: String,
    /// GS08, `004010` or `005010`.
    pub version: String,
    /// The transaction sets read and accepted.
    pub orders: Vec<PurchaseOrder>,
    /// The transaction sets rejected, each with why.
    pub rejected: Vec<RejectedSet>,
    /// Why the whole group is rejected (its GE, or a GS01 other than `PO`); then `orders`
    /// is empty.
    pub error: Option<X12Error>,
    /// GE01 when it is a number, for the 997's AK902.
    #[serde(skip)]
    pub(super) declared_sets: Option<usize>,
}

/// A transaction set that was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectedSet {
    /// ST01 (`850`).
    pub set_id: String,
    /// ST02.
    pub control_number: String,
    /// Why.
    pub error: X12Error,
    /// The ST's position in the interchange (its segment number, ISA being 1).
    #[serde(skip)]
    pub position: usize,
}

/// The purchase orders of the interchange `bytes`.
///
/// A transaction set in error is returned among its group's `rejected`; a group in error
/// (or not of purchase orders) has all its sets there. Pass the result to
/// [`write_997`](super::write_997) for the acknowledgment either way.
///
/// # Errors
/// When the interchange itself cannot be read: no ISA, unusable delimiters, a segment
/// cut short, an IEA missing or not matching, a segment outside any group.
pub fn read_850(bytes: &[u8]) -> Result<Interchange850, X12Error> {
    let read = envelope::read(bytes)?;
    let groups = read
        .groups
        .iter()
        .map(|group| {
            let mut out = Group850 {
                functional_id: group.functional_id.clone(),
                control_number: group.control_number.clone(),
                sender: group.sender.clone(),
                receiver: group.receiver.clone(),
                version: group.version.clone(),
                orders: Vec::new(),
                rejected: Vec::new(),
                error: group.error.clone(),
                declared_sets: group.declared_sets,
            };
            let purchase_orders = group.functional_id == "PO";
            if out.error.is_none() && !purchase_orders {
                out.error = Some(X12Error::Unsupported {
                    position: group.position,
                    envelope: Envelope::Group,
                    value: group.functional_id.clone(),
                });
            }
            let mut seen = std::collections::HashSet::new();
            for set in &group.sets {
                let first = seen.insert(set.control_number.as_str());
                let read_set = || match &set.error {
                    Some(error) => Err(error.clone()),
                    None if !first => Err(X12Error::DuplicateControlNumber {
                        position: set.position,
                        control_number: set.control_number.clone(),
                    }),
                    None if !purchase_orders => Err(X12Error::GroupRejected {
                        position: set.position,
                    }),
                    None => read_order(&read, &out, set),
                };
                match read_set() {
                    Ok(order) if out.error.is_none() => out.orders.push(order),
                    Ok(_) => out.rejected.push(rejected(
                        set,
                        X12Error::GroupRejected {
                            position: set.position,
                        },
                    )),
                    Err(error) => out.rejected.push(rejected(set, error)),
                }
            }
            out
        })
        .collect();
    Ok(Interchange850 {
        control_number: read.control_number.clone(),
        sender: read.sender.clone(),
        receiver: read.receiver.clone(),
        version: read.version.clone(),
        test: read.test,
        groups,
        delimiters: read.delimiters,
    })
}

fn rejected(set: &Set, error: X12Error) -> RejectedSet {
    RejectedSet {
        set_id: set.id.clone(),
        control_number: set.control_number.clone(),
        error,
        position: set.position,
    }
}

/// The purchase order in `set` of `group`.
fn read_order(
    read: &Interchange<'_>,
    group: &Group850,
    set: &Set,
) -> Result<PurchaseOrder, X12Error> {
    if set.id != "850" {
        return Err(X12Error::Unsupported {
            position: set.position,
            envelope: Envelope::Transaction,
            value: set.id.clone(),
        });
    }
    let mut beg = None;
    let mut currency = None;
    let mut references = Vec::new();
    let mut dates = Vec::new();
    let mut parties: Vec<Party> = Vec::new();
    let mut lines: Vec<Line> = Vec::new();
    let mut totals = None;
    // Whether N3/N4 may follow: an N1 opened a loop that no PO1 or CTT has closed.
    let mut in_n1 = false;
    let mut n4_read = false;

    for segment in read.body(set) {
        let heading = lines.is_empty();
        // REF, DTM and N1 after a PO1 belong to that line.
        let (references, dates, parties) = match lines.last_mut() {
            Some(line) => (&mut line.references, &mut line.dates, &mut line.parties),
            None => (&mut references, &mut dates, &mut parties),
        };
        match segment.id {
            "BEG" => {
                if beg.is_some() || !heading {
                    return Err(unexpected(segment, "one BEG, before the PO1 lines"));
                }
                beg = Some(Beg::read(segment)?);
            }
            // A line's own CUR is not read: the heading's is the order's.
            "CUR" if heading => {
                if currency.is_some() {
                    return Err(unexpected(segment, "one CUR in the heading"));
                }
                let code = segment.required(2)?;
                if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
                    return Err(segment.fault(2, ElementFault::InvalidCode, code.as_bytes()));
                }
                currency = Some(code.to_owned());
            }
            "REF" => references.push(Reference {
                qualifier: segment.required(1)?.to_owned(),
                value: match segment.text(2)? {
                    Some(value) => value,
                    None => segment
                        .text(3)?
                        .ok_or_else(|| segment.fault(2, ElementFault::Missing, b""))?,
                }
                .to_owned(),
            }),
            "DTM" => dates.push(DateReference {
                qualifier: segment.required(1)?.to_owned(),
                date: date(segment, 2)?,
            }),
            "N1" => {
                parties.push(party(segment)?);
                in_n1 = true;
                n4_read = false;
            }
            "N3" => {
                let party = parties
                    .last_mut()
                    .filter(|_| in_n1)
                    .ok_or_else(|| unexpected(segment, "N3 inside an N1 loop"))?;
                party.address.push(segment.required(1)?.to_owned());
                party.address.extend(segment.text(2)?.map(str::to_owned));
            }
            "N4" => {
                let party = parties
                    .last_mut()
                    .filter(|_| in_n1 && !n4_read)
                    .ok_or_else(|| unexpected(segment, "one N4 inside an N1 loop"))?;
                party.city = segment.text(1)?.map(str::to_owned);
                party.state = segment.text(2)?.map(str::to_owned);
                party.postal_code = segment.text(3)?.map(str::to_owned);
                party.country = segment.text(4)?.map(str::to_owned);
                n4_read = true;
            }
            "PO1" => {
                if totals.is_some() {
                    return Err(unexpected(segment, "PO1 lines before the CTT"));
                }
                lines.push(line(segment)?);
                in_n1 = false;
            }
            // A PID before any PO1 describes the whole order; it is not read.
            "PID" => {
                if let (Some(line), Some(text)) = (lines.last_mut(), segment.text(5)?) {
                    line.descriptions.push(text.to_owned());
                }
            }
            "CTT" => {
                if totals.is_some() {
                    return Err(unexpected(segment, "one CTT"));
                }
                let line_count = segment.required(1)?;
                let line_count = number(line_count).ok_or_else(|| {
                    segment.fault(1, ElementFault::InvalidNumber, line_count.as_bytes())
                })?;
                if line_count != lines.len() {
                    return Err(X12Error::LineCount {
                        position: segment.position,
                        declared: line_count,
                        actual: lines.len(),
                    });
                }
                totals = Some(Totals {
                    line_count,
                    hash_total: decimal(segment, 2)?,
                });
                in_n1 = false;
            }
            _ => {}
        }
    }
    let Some(beg) = beg else {
        return Err(X12Error::MissingSegment {
            position: set.end,
            segment: "BEG",
        });
    };
    Ok(PurchaseOrder {
        interchange_control_number: read.control_number.clone(),
        sender: read.sender.id.clone(),
        receiver: read.receiver.id.clone(),
        test: read.test,
        group_control_number: group.control_number.clone(),
        control_number: set.control_number.clone(),
        purpose: beg.purpose,
        order_type: beg.order_type,
        number: beg.number,
        release: beg.release,
        date: beg.date,
        currency,
        references,
        dates,
        parties,
        lines,
        totals,
        position: set.position,
    })
}

/// BEG: what the order is.
struct Beg {
    purpose: String,
    order_type: String,
    number: String,
    release: Option<String>,
    date: NaiveDate,
}

impl Beg {
    fn read(segment: &Segment<'_>) -> Result<Self, X12Error> {
        Ok(Self {
            purpose: segment.required(1)?.to_owned(),
            order_type: segment.required(2)?.to_owned(),
            number: segment.required(3)?.to_owned(),
            release: segment.text(4)?.map(str::to_owned),
            date: date(segment, 5)?,
        })
    }
}

fn party(n1: &Segment<'_>) -> Result<Party, X12Error> {
    let (id_qualifier, id) = pair(n1, 3)?.unzip();
    Ok(Party {
        entity: n1.required(1)?.to_owned(),
        name: n1.text(2)?.map(str::to_owned),
        id_qualifier,
        id,
        address: Vec::new(),
        city: None,
        state: None,
        postal_code: None,
        country: None,
    })
}

fn line(po1: &Segment<'_>) -> Result<Line, X12Error> {
    let mut product_ids = Vec::new();
    // Product ids come in qualifier/id pairs from PO106 on.
    for n in (6..=po1.len()).step_by(2) {
        if let Some((qualifier, id)) = pair(po1, n)? {
            product_ids.push(ProductId { qualifier, id });
        }
    }
    Ok(Line {
        number: po1.text(1)?.map(str::to_owned),
        quantity: decimal(po1, 2)?,
        unit: po1.text(3)?.map(str::to_owned),
        unit_price: decimal(po1, 4)?,
        price_basis: po1.text(5)?.map(str::to_owned),
        product_ids,
        descriptions: Vec::new(),
        references: Vec::new(),
        dates: Vec::new(),
        parties: Vec::new(),
    })
}

/// Elements `n` and `n + 1`, a qualifier and its value: both or neither.
fn pair(segment: &Segment<'_>, n: usize) -> Result<Option<(String, String)>, X12Error> {
    match (segment.text(n)?, segment.text(n + 1)?) {
        (Some(qualifier), Some(value)) => Ok(Some((qualifier.to_owned(), value.to_owned()))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(segment.fault(n + 1, ElementFault::Missing, b"")),
        (None, Some(_)) => Err(segment.fault(n, ElementFault::Missing, b"")),
    }
}

/// Element `n`, a mandatory CCYYMMDD date.
fn date(segment: &Segment<'_>, n: usize) -> Result<NaiveDate, X12Error> {
    let text = segment.required(n)?;
    Some(text)
        .filter(|t| t.len() == 8 && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| NaiveDate::parse_from_str(t, "%Y%m%d").ok())
        .ok_or_else(|| segment.fault(n, ElementFault::InvalidDate, text.as_bytes()))
}

/// Element `n`, an optional X12 decimal (`R`): `12`, `-3.5`, `.25`; kept as sent.
fn decimal(segment: &Segment<'_>, n: usize) -> Result<Option<String>, X12Error> {
    let Some(text) = segment.text(n)? else {
        return Ok(None);
    };
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = whole.len() + fraction.len();
    let numeric = (whole.bytes().chain(fraction.bytes())).all(|b| b.is_ascii_digit());
    if !numeric || digits == 0 {
        return Err(segment.fault(n, ElementFault::InvalidNumber, text.as_bytes()));
    }
    if digits > MAX_DIGITS {
        return Err(segment.fault(n, ElementFault::TooLong, text.as_bytes()));
    }
    Ok(Some(text.to_owned()))
}

fn unexpected(segment: &Segment<'_>, expected: &'static str) -> X12Error {
    X12Error::Unexpected {
        position: segment.position,
        found: segment.id.to_owned(),
        expected,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const ISA: &str =
        "ISA*00*          *00*          *ZZ*ACMEBUYER      *ZZ*WIDGETSELLER   *261202*1430*U*00401*000000905*1*P*>~";

    /// One 850 with `body` between ST and SE, its counts right.
    fn one_order(body: &str) -> String {
        let segments = body.matches('~').count() + 2;
        format!(
            "{ISA}GS*PO*A*B*20261202*1430*905*X*004010~ST*850*0001~{body}SE*{segments}*0001~GE*1*905~IEA*1*000000905~"
        )
    }

    fn read_one(body: &str) -> Result<PurchaseOrder, X12Error> {
        let read = read_850(one_order(body).as_bytes()).unwrap();
        let group = &read.groups[0];
        match (group.orders.first(), group.rejected.first()) {
            (Some(order), None) => Ok(order.clone()),
            (None, Some(rejected)) => Err(rejected.error.clone()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn line_level_segments_belong_to_their_line() {
        let order = read_one(
            "BEG*00*SA*PO-1**20261202~CUR*BY*EUR~REF*DP*042~N1*BY*ACME~\
             PO1*1*2*EA*3.5**SK*S-1~CUR*BY*USD~REF*CO*L-1~DTM*010*20261210~\
             N1*ST*STORE 12*92*12~N3*1 MAIN ST*UNIT 4~N4*AUSTIN*TX*78701~PID*F****RED~PID*F****LARGE~\
             PO1*2*1*EA*.25~CTT*2~",
        )
        .unwrap();
        assert_eq!(order.currency.as_deref(), Some("EUR"));
        assert_eq!(order.references.len(), 1);
        assert_eq!(order.parties.len(), 1);
        let line = &order.lines[0];
        assert_eq!(line.references[0].value, "L-1");
        assert_eq!(
            line.dates[0].date,
            NaiveDate::from_ymd_opt(2026, 12, 10).unwrap()
        );
        assert_eq!(line.parties[0].address, ["1 MAIN ST", "UNIT 4"]);
        assert_eq!(line.parties[0].postal_code.as_deref(), Some("78701"));
        assert_eq!(line.descriptions, ["RED", "LARGE"]);
        assert_eq!(order.lines[1].unit_price.as_deref(), Some(".25"));
        assert_eq!(order.totals.as_ref().unwrap().hash_total, None);
    }

    #[test]
    fn unknown_segments_are_skipped() {
        let order =
            read_one("BEG*00*SA*PO-1**20261202~PER*BD*JO~MSG*HELLO~PO1*1*2*EA~TD5*O~").unwrap();
        assert_eq!(order.lines.len(), 1);
        assert_eq!(order.totals, None);
    }

    #[test]
    fn malformed_segments_reject_the_order() {
        let cases: [(&str, X12Error); 9] = [
            (
                "REF*DP~",
                X12Error::Element {
                    position: 4,
                    segment: "REF".into(),
                    element: 2,
                    fault: ElementFault::Missing,
                    value: String::new(),
                },
            ),
            (
                "BEG*00*SA*PO-1**20261302~",
                X12Error::Element {
                    position: 4,
                    segment: "BEG".into(),
                    element: 5,
                    fault: ElementFault::InvalidDate,
                    value: "20261302".into(),
                },
            ),
            (
                "BEG*00*SA*PO-1**20261202~PO1*1*1,5*EA~",
                X12Error::Element {
                    position: 5,
                    segment: "PO1".into(),
                    element: 2,
                    fault: ElementFault::InvalidNumber,
                    value: "1,5".into(),
                },
            ),
            (
                "BEG*00*SA*PO-1**20261202~PO1*1*1*EA*2**VP~",
                X12Error::Element {
                    position: 5,
                    segment: "PO1".into(),
                    element: 7,
                    fault: ElementFault::Missing,
                    value: String::new(),
                },
            ),
            (
                "BEG*00*SA*PO-1**20261202~N3*1 MAIN ST~",
                X12Error::Unexpected {
                    position: 5,
                    found: "N3".into(),
                    expected: "N3 inside an N1 loop",
                },
            ),
            (
                "BEG*00*SA*PO-1**20261202~BEG*00*SA*PO-2**20261202~",
                X12Error::Unexpected {
                    position: 5,
                    found: "BEG".into(),
                    expected: "one BEG, before the PO1 lines",
                },
            ),
            (
                "REF*DP*1~",
                X12Error::MissingSegment {
                    position: 5,
                    segment: "BEG",
                },
            ),
            (
                "BEG*00*SA*PO-1**20261202~PO1*1*1*EA~CTT*2~",
                X12Error::LineCount {
                    position: 6,
                    declared: 2,
                    actual: 1,
                },
            ),
            (
                "BEG*00*SA*PO-1**20261202~CUR*BY*euro~",
                X12Error::Element {
                    position: 5,
                    segment: "CUR".into(),
                    element: 2,
                    fault: ElementFault::InvalidCode,
                    value: "euro".into(),
                },
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(read_one(body), Err(expected), "{body}");
        }
    }

    #[test]
    fn decimals_are_checked_and_kept_as_sent() {
        let order =
            read_one("BEG*00*SA*PO-1**20261202~PO1*1*-2*EA*12.~PO1*2*0.5*EA*1.2345~PO1*3*3*EA*a~");
        assert!(matches!(
            order,
            Err(X12Error::Element {
                position: 7,
                element: 4,
                ..
            })
        ));
        let order =
            read_one("BEG*00*SA*PO-1**20261202~PO1*1*-2*EA*12.~PO1*2*0.5*EA*1.2345~").unwrap();
        let quantities: Vec<_> = order.lines.iter().map(|l| l.quantity.as_deref()).collect();
        assert_eq!(quantities, [Some("-2"), Some("0.5")]);
        assert_eq!(order.lines[0].unit_price.as_deref(), Some("12."));
        for bad in ["-", ".", "1.2.3", "1e5", "123456789012345678901"] {
            let body = format!("BEG*00*SA*PO-1**20261202~PO1*1*{bad}*EA~");
            assert!(read_one(&body).is_err(), "{bad}");
        }
    }

    #[test]
    fn other_sets_and_groups_are_rejected() {
        let text = one_order("BEG*00*SA*PO-1**20261202~").replace("ST*850", "ST*810");
        let read = read_850(text.as_bytes()).unwrap();
        assert!(matches!(
            read.groups[0].rejected[0].error,
            X12Error::Unsupported {
                envelope: Envelope::Transaction,
                ..
            }
        ));
        let text = one_order("BEG*00*SA*PO-1**20261202~").replace("GS*PO", "GS*IN");
        let read = read_850(text.as_bytes()).unwrap();
        assert!(matches!(
            read.groups[0].error,
            Some(X12Error::Unsupported {
                envelope: Envelope::Group,
                ..
            })
        ));
        assert_eq!(
            read.groups[0].rejected[0].error,
            X12Error::GroupRejected { position: 3 }
        );
    }
}
