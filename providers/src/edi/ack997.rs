//! The 997 Functional Acknowledgment: what a partner expects back for every functional
//! group it sent, accepted or not.
//!
//! One interchange answers one interchange: ISA and GS with sender and receiver swapped,
//! control numbers from the caller, and one 997 transaction set per functional group read:
//!
//! ```text
//! ST*997*0001~          one per group acknowledged
//! AK1*PO*905~           GS01, GS06 of the group
//! AK2*850*0001~         ST01, ST02 of each transaction set
//! AK3*PO1*9**8~         the segment at fault (position from ST = 1), when one is
//! AK4*2**6*1,5~         the element at fault, its error code and its bad value
//! AK5*R*5~              A accepted, R rejected (+ why)
//! AK9*P*2*2*1~          the group: A/P/R, sets included, received, accepted (+ why)
//! SE*…*0001~
//! ```

use chrono::NaiveDateTime;

use super::error::{Envelope, X12Error};
use super::po850::{Group850, Interchange850};
use super::segments::Delimiters;

/// A control number for an interchange (ISA13) or a group (GS06): 1 to 999 999 999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ControlNumber(u32);

impl ControlNumber {
    /// The largest: nine digits.
    pub const MAX: u32 = 999_999_999;

    /// `n` as a control number; `None` when 0 or more than nine digits.
    pub fn new(n: u32) -> Option<Self> {
        (1..=Self::MAX).contains(&n).then_some(Self(n))
    }

    /// The number.
    pub fn get(self) -> u32 {
        self.0
    }
}

/// The fresh control numbers of one acknowledgment, drawn by the caller from its own
/// sequence per partner (the partner checks they do not repeat).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckControls {
    /// ISA13 and IEA02.
    pub interchange: ControlNumber,
    /// GS06 and GE02.
    pub group: ControlNumber,
}

/// The 997 interchange answering `read`, dated `at` (the caller's clock, in the time the
/// partner expects), in `read`'s delimiters and layout.
///
/// The functional group's GS02/GS03 and GS08 are those of `read`'s first group, swapped.
/// Returns `None` when `read` holds no functional group: there is nothing to acknowledge.
pub fn write_997(
    read: &Interchange850,
    controls: AckControls,
    at: NaiveDateTime,
) -> Option<String> {
    let first = read.groups.first()?;
    let mut w = Writer::new(read.delimiters);

    let interchange = format!("{:09}", controls.interchange.get());
    let group = controls.group.get().to_string();
    let version = if first.version.is_empty() {
        // GS08 is mandatory; an ISA12 of `00401` is the version `004010`.
        format!("{}0", read.version)
    } else {
        first.version.clone()
    };
    w.isa(&[
        "00",
        "          ",
        "00",
        "          ",
        &format!("{:<2}", read.receiver.qualifier),
        &format!("{:<15}", read.receiver.id),
        &format!("{:<2}", read.sender.qualifier),
        &format!("{:<15}", read.sender.id),
        &at.format("%y%m%d").to_string(),
        &at.format("%H%M").to_string(),
        &read
            .delimiters
            .repetition
            .map_or_else(|| "U".to_owned(), |b| char::from(b).to_string()),
        &read.version,
        &interchange,
        // No TA1 asked for: an acknowledgment is not acknowledged.
        "0",
        if read.test { "T" } else { "P" },
        &char::from(read.delimiters.component).to_string(),
    ]);
    w.segment(
        "GS",
        &[
            "FA",
            &first.receiver,
            &first.sender,
            &at.format("%Y%m%d").to_string(),
            &at.format("%H%M").to_string(),
            &group,
            "X",
            &version,
        ],
    );
    for (index, acknowledged) in read.groups.iter().enumerate() {
        acknowledge(&mut w, acknowledged, &format!("{:04}", index + 1));
    }
    w.segment("GE", &[&read.groups.len().to_string(), &group]);
    w.segment("IEA", &["1", &interchange]);
    Some(w.out)
}

/// One 997 transaction set, acknowledging `group`.
fn acknowledge(w: &mut Writer, group: &Group850, control: &str) {
    let start = w.segments;
    w.segment("ST", &["997", control]);
    w.segment("AK1", &[&group.functional_id, &group.control_number]);

    let mut sets: Vec<(usize, &str, &str, Option<&X12Error>)> = group
        .orders
        .iter()
        .map(|order| (order.position, "850", order.control_number.as_str(), None))
        .chain(group.rejected.iter().map(|set| {
            (
                set.position,
                set.set_id.as_str(),
                set.control_number.as_str(),
                Some(&set.error),
            )
        }))
        .collect();
    sets.sort_by_key(|&(position, ..)| position);
    for &(position, id, set_control, error) in &sets {
        w.segment("AK2", &[id, set_control]);
        let Some(error) = error else {
            w.segment("AK5", &["A"]);
            continue;
        };
        let (code, segment) = set_error(error, position);
        if let Some(segment) = segment {
            w.segment(
                "AK3",
                &[
                    &segment.id,
                    &segment.position.to_string(),
                    "",
                    &segment.code.to_string(),
                ],
            );
            if let Some(element) = segment.element {
                w.segment(
                    "AK4",
                    &[
                        &element.position.to_string(),
                        "",
                        &element.code.to_string(),
                        &element.value,
                    ],
                );
            }
        }
        w.segment(
            "AK5",
            &["R", &code.map(|c| c.to_string()).unwrap_or_default()],
        );
    }

    let received = sets.len();
    let accepted = group.orders.len();
    let status = if group.error.is_some() || (accepted == 0 && received > 0) {
        "R"
    } else if accepted == received {
        "A"
    } else {
        "P"
    };
    let code = group.error.as_ref().and_then(group_error);
    w.segment(
        "AK9",
        &[
            status,
            &group.declared_sets.unwrap_or(received).to_string(),
            &received.to_string(),
            &accepted.to_string(),
            &code.map(|c| c.to_string()).unwrap_or_default(),
        ],
    );
    // SE counts ST and itself.
    let count = w.segments - start + 1;
    w.segment("SE", &[&count.to_string(), control]);
}

/// AK3: a segment in error.
struct SegmentError {
    id: String,
    /// From ST = 1.
    position: usize,
    /// Element 720: 2 unexpected, 3 mandatory missing, 8 has data element errors.
    code: u8,
    element: Option<ElementError>,
}

/// AK4: an element in error.
struct ElementError {
    position: usize,
    /// Element 723.
    code: u8,
    /// A copy of the bad data.
    value: String,
}

/// AK502 (element 718) and the AK3/AK4 for a transaction set rejected with `error`, whose
/// ST is at `st`.
fn set_error(error: &X12Error, st: usize) -> (Option<u8>, Option<SegmentError>) {
    // The position of `at` in the set, ST being 1.
    let relative = |at: usize| at.checked_sub(st).and_then(|d| d.checked_add(1));
    let segment = |id: &str, at: usize, code: u8, element: Option<ElementError>| {
        relative(at).map(|position| SegmentError {
            id: id.to_owned(),
            position,
            code,
            element,
        })
    };
    let transaction = |envelope: &Envelope, code: u8| match envelope {
        Envelope::Transaction => Some(code),
        Envelope::Interchange | Envelope::Group => None,
    };
    match error {
        X12Error::Unsupported { envelope, .. } => (transaction(envelope, 1), None),
        X12Error::MissingTrailer { envelope, .. } => (transaction(envelope, 2), None),
        X12Error::ControlMismatch { envelope, .. } => (transaction(envelope, 3), None),
        X12Error::CountMismatch { envelope, .. } => (transaction(envelope, 4), None),
        X12Error::Unexpected {
            position, found, ..
        } => (Some(5), segment(found, *position, 2, None)),
        X12Error::MissingSegment { position, segment: id } => {
            (Some(5), segment(id, *position, 3, None))
        }
        X12Error::LineCount { position, .. } => (Some(5), segment("CTT", *position, 8, None)),
        // 23: Transaction Set Control Number Not Unique within the Functional Group.
        X12Error::DuplicateControlNumber { .. } => (Some(23), None),
        X12Error::Element {
            position,
            segment: id,
            element,
            fault,
            value,
        } => {
            let element = ElementError {
                position: *element,
                code: fault.code(),
                value: value.clone(),
            };
            (Some(5), segment(id, *position, 8, Some(element)))
        }
        // Rejected with its group: AK9 says why.
        X12Error::GroupRejected { .. }
        // Errors of the interchange's syntax, which fail the whole read before any set.
        | X12Error::NotAnInterchange { .. }
        | X12Error::BadDelimiters { .. }
        | X12Error::Unterminated { .. }
        | X12Error::EmptySegment { .. }
        | X12Error::BadSegmentId { .. }
        | X12Error::TrailingData { .. } => (None, None),
    }
}

/// AK905 (element 716) for a group rejected with `error`.
fn group_error(error: &X12Error) -> Option<u8> {
    let group = |envelope: &Envelope, code: u8| match envelope {
        Envelope::Group => Some(code),
        Envelope::Interchange | Envelope::Transaction => None,
    };
    match error {
        X12Error::Unsupported { envelope, .. } => group(envelope, 1),
        X12Error::MissingTrailer { envelope, .. } => group(envelope, 3),
        X12Error::ControlMismatch { envelope, .. } => group(envelope, 4),
        X12Error::CountMismatch { envelope, .. } => group(envelope, 5),
        X12Error::NotAnInterchange { .. }
        | X12Error::BadDelimiters { .. }
        | X12Error::Unterminated { .. }
        | X12Error::EmptySegment { .. }
        | X12Error::BadSegmentId { .. }
        | X12Error::Unexpected { .. }
        | X12Error::TrailingData { .. }
        | X12Error::MissingSegment { .. }
        | X12Error::Element { .. }
        | X12Error::LineCount { .. }
        | X12Error::GroupRejected { .. }
        | X12Error::DuplicateControlNumber { .. } => None,
    }
}

/// Segments written in one interchange's delimiters.
struct Writer {
    out: String,
    delimiters: Delimiters,
    /// Segments written so far.
    segments: usize,
}

impl Writer {
    fn new(delimiters: Delimiters) -> Self {
        Self {
            out: String::new(),
            delimiters,
            segments: 0,
        }
    }

    /// The ISA, its fixed-width elements as given (ISA11 and ISA16 are delimiters).
    fn isa(&mut self, elements: &[&str]) {
        self.out.push_str("ISA");
        for element in elements {
            self.out.push(char::from(self.delimiters.element));
            self.out.push_str(element);
        }
        self.end();
    }

    /// A segment; trailing empty elements are left out, as X12 wants, and delimiters are
    /// taken out of values (an AK4 quoting bad data could carry them).
    fn segment(&mut self, id: &str, elements: &[&str]) {
        let d = self.delimiters;
        let syntax = [
            Some(d.element),
            Some(d.component),
            d.repetition,
            Some(d.segment),
        ];
        let clean = |element: &&str| -> String {
            element
                .chars()
                .filter(|c| !c.is_control() && !syntax.contains(&u8::try_from(*c).ok()))
                .collect()
        };
        let elements: Vec<String> = elements.iter().map(clean).collect();
        let used = elements
            .iter()
            .rposition(|element| !element.is_empty())
            .map_or(0, |last| last + 1);
        self.out.push_str(id);
        for element in elements.iter().take(used) {
            self.out.push(char::from(d.element));
            self.out.push_str(element);
        }
        self.end();
    }

    fn end(&mut self) {
        self.out.push(char::from(self.delimiters.segment));
        self.out.push_str(self.delimiters.line_break.as_str());
        self.segments += 1;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::NaiveDate;

    use super::super::read_850;
    use super::*;

    const ISA: &str =
        "ISA*00*          *00*          *ZZ*ACMEBUYER      *ZZ*WIDGETSELLER   *261202*1430*U*00401*000000905*1*P*>~";

    fn controls() -> AckControls {
        AckControls {
            interchange: ControlNumber::new(1001).unwrap(),
            group: ControlNumber::new(1001).unwrap(),
        }
    }

    fn at() -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 12, 2)
            .unwrap()
            .and_hms_opt(14, 31, 0)
            .unwrap()
    }

    /// The 997 of `text`, without its ISA/GS and GE/IEA.
    fn sets(text: &str) -> Vec<String> {
        let read = read_850(text.as_bytes()).unwrap();
        let ack = write_997(&read, controls(), at()).unwrap();
        let segments: Vec<String> = ack.split('~').map(str::to_owned).collect();
        segments[2..segments.len() - 3].to_vec()
    }

    #[test]
    fn control_numbers_have_nine_digits_at_most() {
        assert_eq!(ControlNumber::new(0), None);
        assert_eq!(ControlNumber::new(1_000_000_000), None);
        assert_eq!(ControlNumber::new(999_999_999).unwrap().get(), 999_999_999);
    }

    #[test]
    fn reports_each_set_and_the_group() {
        let text = format!(
            "{ISA}GS*PO*A*B*20261202*1430*905*X*004010~\
             ST*850*0001~BEG*00*SA*1**20261202~SE*3*0001~\
             ST*850*0002~BEG*00*SA*2**20261202~PO1*1*1,5*EA~SE*4*0002~\
             ST*850*0003~BEG*00*SA*3**20261202~SE*9*0003~\
             ST*850*0004~SE*2*0004~\
             GE*4*905~IEA*1*000000905~"
        );
        assert_eq!(
            sets(&text),
            [
                "ST*997*0001",
                "AK1*PO*905",
                "AK2*850*0001",
                "AK5*A",
                "AK2*850*0002",
                "AK3*PO1*3**8",
                "AK4*2**6*1,5",
                "AK5*R*5",
                "AK2*850*0003",
                "AK5*R*4",
                "AK2*850*0004",
                "AK3*BEG*2**3",
                "AK5*R*5",
                "AK9*P*4*4*1",
                "SE*15*0001",
            ]
        );
    }

    #[test]
    fn a_rejected_group_rejects_its_sets() {
        let text = format!(
            "{ISA}GS*PO*A*B*20261202*1430*905*X*004010~\
             ST*850*0001~BEG*00*SA*1**20261202~SE*3*0001~\
             GE*2*905~IEA*1*000000905~"
        );
        assert_eq!(
            sets(&text),
            [
                "ST*997*0001",
                "AK1*PO*905",
                "AK2*850*0001",
                "AK5*R",
                "AK9*R*2*1*0*5",
                "SE*6*0001",
            ]
        );
    }

    #[test]
    fn answers_in_the_partners_syntax() {
        let text = format!(
            "{ISA}\r\nGS*PO*A*B*20261202*1430*905*X*005010~\r\nGE*0*905~\r\nIEA*1*000000905~\r\n"
        )
        .replace('*', "|")
        .replace("|U|00401|", "|^|00501|")
        .replace("|P|>", "|T|:");
        let read = read_850(text.as_bytes()).unwrap();
        let ack = write_997(&read, controls(), at()).unwrap();
        assert_eq!(
            ack,
            "ISA|00|          |00|          |ZZ|WIDGETSELLER   |ZZ|ACMEBUYER      |261202|1431|^|00501|000001001|0|T|:~\r\n\
             GS|FA|B|A|20261202|1431|1001|X|005010~\r\n\
             ST|997|0001~\r\n\
             AK1|PO|905~\r\n\
             AK9|A|0|0|0~\r\n\
             SE|4|0001~\r\n\
             GE|1|1001~\r\n\
             IEA|1|000001001~\r\n"
        );
    }

    #[test]
    fn values_cannot_break_the_syntax() {
        let empty = read_850(format!("{ISA}IEA*0*000000905~").as_bytes()).unwrap();
        let mut w = Writer::new(empty.delimiters);
        w.segment("AK4", &["1", "", "6", "A>B*C~D\u{7}E^", ""]);
        // `^` is no delimiter of a 00401 interchange.
        assert_eq!(w.out, "AK4*1**6*ABCDE^~");
        // No group: nothing to acknowledge.
        assert_eq!(write_997(&empty, controls(), at()), None);
    }
}
