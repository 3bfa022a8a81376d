//! Segments to envelopes: the interchange, its functional groups and their transaction
//! sets, with every trailer checked against what it closes.
//!
//! Errors are kept at the level they belong to, because that is the level a 997 answers:
//! - a transaction set whose SE is missing, miscounts its segments or names another control
//!   number is rejected alone (AK5), and reading goes on with the next ST;
//! - a group whose GE is missing, miscounts its sets or names another control number is
//!   rejected whole (AK9), and reading goes on with the next GS;
//! - anything wrong with the interchange itself (ISA, IEA, a segment outside any group, a
//!   missing GS01/GS06/ST01/ST02 that a 997 must quote) fails the whole read: that is a TA1's
//!   business, not a 997's.

use std::ops::Range;

use serde::Serialize;

use super::error::{quote, ElementFault, Envelope, X12Error};
use super::segments::{split, Delimiters, Segment};

/// An interchange sender or receiver: ISA05/ISA06 or ISA07/ISA08.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartnerId {
    /// The id's qualifier (`ZZ` mutually defined, `01` DUNS, `12` phone, …).
    pub qualifier: String,
    /// The id, trimmed of its padding.
    pub id: String,
}

/// A whole interchange, its envelopes read and checked.
#[derive(Debug)]
pub(super) struct Interchange<'a> {
    pub(super) delimiters: Delimiters,
    pub(super) sender: PartnerId,
    pub(super) receiver: PartnerId,
    /// ISA12, `00401` or `00501`.
    pub(super) version: String,
    /// ISA13.
    pub(super) control_number: String,
    /// ISA15 is `T`.
    pub(super) test: bool,
    pub(super) groups: Vec<Group>,
    segments: Vec<Segment<'a>>,
}

impl<'a> Interchange<'a> {
    /// The segments of `set` between its ST and its SE.
    pub(super) fn body(&self, set: &Set) -> &[Segment<'a>] {
        self.segments.get(set.body.clone()).unwrap_or_default()
    }
}

/// A functional group (GS … GE).
#[derive(Debug)]
pub(super) struct Group {
    /// The GS segment.
    pub(super) position: usize,
    /// GS01: `PO` for purchase orders.
    pub(super) functional_id: String,
    /// GS02, the application sender.
    pub(super) sender: String,
    /// GS03, the application receiver.
    pub(super) receiver: String,
    /// GS06.
    pub(super) control_number: String,
    /// GS08, `004010` or `005010`.
    pub(super) version: String,
    /// GE01 when it is a number.
    pub(super) declared_sets: Option<usize>,
    pub(super) sets: Vec<Set>,
    /// What is wrong with the GE, when anything is.
    pub(super) error: Option<X12Error>,
}

/// A transaction set (ST … SE).
#[derive(Debug)]
pub(super) struct Set {
    /// The ST segment.
    pub(super) position: usize,
    /// ST01: `850`.
    pub(super) id: String,
    /// ST02.
    pub(super) control_number: String,
    /// Indices in the interchange's segments between ST and SE.
    body: Range<usize>,
    /// The SE, or the segment found where it should have been.
    pub(super) end: usize,
    /// What is wrong with the SE, when anything is.
    pub(super) error: Option<X12Error>,
}

/// `bytes` read as one interchange.
///
/// # Errors
/// When the interchange itself is unreadable; see the module docs for what fails only a
/// group or a set.
pub(super) fn read(bytes: &[u8]) -> Result<Interchange<'_>, X12Error> {
    let (delimiters, segments) = split(bytes)?;
    let isa = segments
        .first()
        .filter(|isa| isa.id == "ISA")
        .ok_or_else(|| X12Error::NotAnInterchange {
            position: 1,
            found: quote(bytes.get(..3).unwrap_or(bytes)),
        })?;
    if isa.len() != 16 {
        return Err(X12Error::BadDelimiters {
            position: 1,
            reason: "the ISA does not have 16 elements before its terminator",
        });
    }
    let sender = PartnerId {
        qualifier: fixed(isa, 5, 2)?.to_owned(),
        id: fixed(isa, 6, 15)?.to_owned(),
    };
    let receiver = PartnerId {
        qualifier: fixed(isa, 7, 2)?.to_owned(),
        id: fixed(isa, 8, 15)?.to_owned(),
    };
    let version = isa.required(12)?;
    if version.len() != 5 || !version.bytes().all(|b| b.is_ascii_digit()) {
        return Err(isa.fault(12, ElementFault::InvalidCode, version.as_bytes()));
    }
    let control_number = control(isa, 13)?;
    let test = match isa.required(15)? {
        "P" => false,
        "T" => true,
        other => return Err(isa.fault(15, ElementFault::InvalidCode, other.as_bytes())),
    };

    let mut groups = Vec::new();
    let mut at = 1;
    loop {
        let Some(segment) = segments.get(at) else {
            return Err(end_of_data(&segments, Envelope::Interchange));
        };
        match segment.id {
            "GS" => {
                let (group, next) = read_group(&segments, at)?;
                groups.push(group);
                at = next;
            }
            "IEA" => {
                count(segment, Envelope::Interchange, groups.len())?;
                same_control(segment, Envelope::Interchange, control_number)?;
                if let Some(extra) = segments.get(at + 1) {
                    return Err(X12Error::TrailingData {
                        position: extra.position,
                    });
                }
                break;
            }
            other => {
                return Err(X12Error::Unexpected {
                    position: segment.position,
                    found: other.to_owned(),
                    expected: "GS or IEA",
                })
            }
        }
    }
    Ok(Interchange {
        delimiters,
        sender,
        receiver,
        version: version.to_owned(),
        control_number: control_number.to_owned(),
        test,
        groups,
        segments,
    })
}

/// The group whose GS is `segments[at]`, and the index after it.
fn read_group(segments: &[Segment<'_>], at: usize) -> Result<(Group, usize), X12Error> {
    let Some(gs) = segments.get(at) else {
        return Err(end_of_data(segments, Envelope::Group));
    };
    let control_number = control(gs, 6)?;
    let mut group = Group {
        position: gs.position,
        functional_id: gs.required(1)?.to_owned(),
        sender: gs.text(2)?.unwrap_or_default().to_owned(),
        receiver: gs.text(3)?.unwrap_or_default().to_owned(),
        control_number: control_number.to_owned(),
        version: gs.text(8)?.unwrap_or_default().to_owned(),
        declared_sets: None,
        sets: Vec::new(),
        error: None,
    };
    let mut at = at + 1;
    loop {
        let Some(segment) = segments.get(at) else {
            return Err(end_of_data(segments, Envelope::Group));
        };
        match segment.id {
            "ST" => {
                let (set, next) = read_set(segments, at)?;
                group.sets.push(set);
                at = next;
            }
            "GE" => {
                group.declared_sets = segment.text(1).ok().flatten().and_then(number);
                group.error = count(segment, Envelope::Group, group.sets.len())
                    .and_then(|()| same_control(segment, Envelope::Group, control_number))
                    .err();
                return Ok((group, at + 1));
            }
            "GS" | "IEA" => {
                group.error = Some(missing_trailer(segment, Envelope::Group));
                return Ok((group, at));
            }
            other => {
                return Err(X12Error::Unexpected {
                    position: segment.position,
                    found: other.to_owned(),
                    expected: "ST or GE",
                })
            }
        }
    }
}

/// The transaction set whose ST is `segments[at]`, and the index after it.
fn read_set(segments: &[Segment<'_>], at: usize) -> Result<(Set, usize), X12Error> {
    let Some(st) = segments.get(at) else {
        return Err(end_of_data(segments, Envelope::Transaction));
    };
    let id = st.required(1)?;
    let control_number = st.required(2)?;
    let set = |index: usize, end: &Segment<'_>, error| Set {
        position: st.position,
        id: id.to_owned(),
        control_number: control_number.to_owned(),
        body: at + 1..index,
        end: end.position,
        error,
    };
    for (index, segment) in segments.iter().enumerate().skip(at + 1) {
        match segment.id {
            "SE" => {
                // ST and SE count themselves.
                let counted = index - at + 1;
                let error = count(segment, Envelope::Transaction, counted)
                    .and_then(|()| same_control(segment, Envelope::Transaction, control_number))
                    .err();
                return Ok((set(index, segment, error), index + 1));
            }
            // An SE is missing: the next envelope segment ends the set.
            "ST" | "GE" | "GS" | "IEA" => {
                let error = missing_trailer(segment, Envelope::Transaction);
                return Ok((set(index, segment, Some(error)), index));
            }
            _ => {}
        }
    }
    Err(end_of_data(segments, Envelope::Transaction))
}

/// Element `n` of `isa`, a fixed-width field of at most `width` ASCII characters.
fn fixed<'a>(isa: &Segment<'a>, n: usize, width: usize) -> Result<&'a str, X12Error> {
    let value = isa.required(n)?;
    if !value.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(isa.fault(n, ElementFault::InvalidCharacter, value.as_bytes()));
    }
    if value.len() > width {
        return Err(isa.fault(n, ElementFault::TooLong, value.as_bytes()));
    }
    Ok(value)
}

/// Element `n` of `segment`, a control number: one to nine digits.
fn control<'a>(segment: &Segment<'a>, n: usize) -> Result<&'a str, X12Error> {
    let value = segment.required(n)?;
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(segment.fault(n, ElementFault::InvalidNumber, value.as_bytes()));
    }
    if value.len() > 9 {
        return Err(segment.fault(n, ElementFault::TooLong, value.as_bytes()));
    }
    Ok(value)
}

/// `text` as a count: digits only (`str::parse` would also take a sign).
pub(super) fn number(text: &str) -> Option<usize> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Checks the count in element 01 of the `envelope`'s trailer `segment`.
fn count(segment: &Segment<'_>, envelope: Envelope, actual: usize) -> Result<(), X12Error> {
    let declared = segment.text(1)?.unwrap_or_default();
    if number(declared) == Some(actual) {
        return Ok(());
    }
    Err(X12Error::CountMismatch {
        position: segment.position,
        envelope,
        declared: quote(declared.as_bytes()),
        actual,
    })
}

/// Checks that element 02 of the `envelope`'s trailer `segment` repeats its header's
/// control number.
fn same_control(segment: &Segment<'_>, envelope: Envelope, expected: &str) -> Result<(), X12Error> {
    let found = segment.text(2)?.unwrap_or_default();
    if found == expected {
        return Ok(());
    }
    Err(X12Error::ControlMismatch {
        position: segment.position,
        envelope,
        found: quote(found.as_bytes()),
        expected: expected.to_owned(),
    })
}

fn missing_trailer(found: &Segment<'_>, envelope: Envelope) -> X12Error {
    X12Error::MissingTrailer {
        position: found.position,
        envelope,
        found: found.id.to_owned(),
    }
}

fn end_of_data(segments: &[Segment<'_>], envelope: Envelope) -> X12Error {
    X12Error::MissingTrailer {
        position: segments.len() + 1,
        envelope,
        found: "end of data".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const ISA: &str =
        "ISA*00*          *00*          *ZZ*ACMEBUYER      *ZZ*WIDGETSELLER   *261202*1430*U*00401*000000905*1*P*>~";

    fn interchange(rest: &str) -> String {
        format!("{ISA}\n{}", rest.replace('~', "~\n"))
    }

    const TWO_GROUPS: &str = "GS*PO*A*B*20261202*1430*7*X*004010~\
        ST*850*0001~BEG*00~SE*3*0001~\
        ST*850*0002~SE*2*0002~\
        GE*2*7~\
        GS*PO*A*B*20261202*1430*8*X*004010~GE*0*8~\
        IEA*2*000000905~";

    #[test]
    fn reads_groups_and_sets() {
        let text = interchange(TWO_GROUPS);
        let parsed = read(text.as_bytes()).unwrap();
        assert_eq!(parsed.sender.id, "ACMEBUYER");
        assert_eq!(parsed.receiver.qualifier, "ZZ");
        assert_eq!(parsed.control_number, "000000905");
        assert_eq!(parsed.version, "00401");
        assert!(!parsed.test);
        assert_eq!(parsed.groups.len(), 2);
        let group = &parsed.groups[0];
        assert_eq!(
            (group.functional_id.as_str(), group.control_number.as_str()),
            ("PO", "7")
        );
        assert_eq!(group.declared_sets, Some(2));
        assert_eq!(group.error, None);
        let ids: Vec<_> = group
            .sets
            .iter()
            .map(|s| s.control_number.as_str())
            .collect();
        assert_eq!(ids, ["0001", "0002"]);
        assert_eq!(group.sets[0].position, 3);
        assert_eq!(group.sets[0].end, 5);
        assert_eq!(parsed.body(&group.sets[0])[0].id, "BEG");
        assert!(parsed.body(&group.sets[1]).is_empty());
        assert!(parsed.groups[1].sets.is_empty());
    }

    #[test]
    fn a_bad_se_fails_its_set_only() {
        let text = interchange(&TWO_GROUPS.replace("SE*3*0001", "SE*4*0001"));
        let parsed = read(text.as_bytes()).unwrap();
        let sets = &parsed.groups[0].sets;
        assert_eq!(
            sets[0].error,
            Some(X12Error::CountMismatch {
                position: 5,
                envelope: Envelope::Transaction,
                declared: "4".into(),
                actual: 3
            })
        );
        assert_eq!(sets[1].error, None);
        assert_eq!(parsed.groups[0].error, None);

        let text = interchange(&TWO_GROUPS.replace("SE*2*0002", "SE*2*0003"));
        let parsed = read(text.as_bytes()).unwrap();
        assert!(matches!(
            parsed.groups[0].sets[1].error,
            Some(X12Error::ControlMismatch {
                envelope: Envelope::Transaction,
                ..
            })
        ));
    }

    #[test]
    fn a_missing_se_ends_at_the_next_st() {
        let text = interchange(&TWO_GROUPS.replace("SE*3*0001~", ""));
        let parsed = read(text.as_bytes()).unwrap();
        let sets = &parsed.groups[0].sets;
        assert_eq!(sets.len(), 2);
        assert_eq!(
            sets[0].error,
            Some(X12Error::MissingTrailer {
                position: 5,
                envelope: Envelope::Transaction,
                found: "ST".into()
            })
        );
        assert_eq!(parsed.body(&sets[0]).len(), 1);
        assert_eq!(sets[1].error, None);
    }

    #[test]
    fn a_bad_ge_fails_its_group_only() {
        for (from, to) in [("GE*2*7", "GE*3*7"), ("GE*2*7", "GE*2*9"), ("GE*2*7~", "")] {
            let text = interchange(&TWO_GROUPS.replace(from, to));
            let parsed = read(text.as_bytes()).unwrap();
            assert!(parsed.groups[0].error.is_some(), "{to}");
            assert_eq!(parsed.groups[0].sets.len(), 2);
            assert_eq!(parsed.groups[1].error, None);
        }
    }

    #[test]
    fn a_bad_interchange_fails_the_read() {
        let cases = [
            ("IEA*2*", "IEA*1*"),
            ("IEA*2*000000905", "IEA*2*000000906"),
            ("IEA*2*000000905~", ""),
            ("IEA*2*000000905~", "IEA*2*000000905~GS*PO~"),
            ("GE*0*8~", "GE*0*8~REF*DP*1~"),
            ("ST*850*0002~", "ST*850~"),
            ("GS*PO*A*B*20261202*1430*8*", "GS*PO*A*B*20261202*1430*8A*"),
        ];
        for (from, to) in cases {
            let text = interchange(&TWO_GROUPS.replace(from, to));
            assert!(read(text.as_bytes()).is_err(), "{to}");
        }
        assert_eq!(
            read(interchange(&TWO_GROUPS.replace("IEA*2*", "IEA*1*")).as_bytes()).err(),
            Some(X12Error::CountMismatch {
                position: 11,
                envelope: Envelope::Interchange,
                declared: "1".into(),
                actual: 2
            })
        );
        let test = ISA.replace("*P*>", "*X*>") + TWO_GROUPS;
        assert!(matches!(
            read(test.as_bytes()),
            Err(X12Error::Element { element: 15, .. })
        ));
        let long = ISA.replace("ACMEBUYER      *", "ACMEBUYER-0123456789*") + TWO_GROUPS;
        assert!(matches!(
            read(long.as_bytes()),
            Err(X12Error::Element {
                element: 6,
                fault: ElementFault::TooLong,
                ..
            })
        ));
    }

    #[test]
    fn counts_are_digits_only() {
        assert_eq!(number("14"), Some(14));
        assert_eq!(number("+14"), None);
        assert_eq!(number(""), None);
        assert_eq!(number("99999999999999999999999"), None);
    }
}
