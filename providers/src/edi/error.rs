//! What can be wrong with an interchange, and where.
//!
//! Every error names the segment it was found at by its *position*: the segment's ordinal in
//! the interchange, ISA being 1. The 997 writer turns that into the position inside the
//! transaction set (ST being 1) that an AK3 reports.

use std::fmt;

use serde::Serialize;

/// One of the three envelopes of an interchange, from the outside in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Envelope {
    /// ISA … IEA.
    Interchange,
    /// GS … GE: a functional group.
    Group,
    /// ST … SE: a transaction set (one purchase order).
    Transaction,
}

impl Envelope {
    /// The id of the segment that opens this envelope.
    pub fn header(self) -> &'static str {
        match self {
            Envelope::Interchange => "ISA",
            Envelope::Group => "GS",
            Envelope::Transaction => "ST",
        }
    }

    /// The id of the segment that closes this envelope.
    pub fn trailer(self) -> &'static str {
        match self {
            Envelope::Interchange => "IEA",
            Envelope::Group => "GE",
            Envelope::Transaction => "SE",
        }
    }
}

/// What is wrong with one data element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ElementFault {
    /// A mandatory element is absent or empty.
    Missing,
    /// Longer than the element allows.
    TooLong,
    /// Bytes that are not text (not UTF-8, or not ASCII where X12 wants it).
    InvalidCharacter,
    /// Not a number of the kind the element holds.
    InvalidNumber,
    /// Not one of the codes the element allows.
    InvalidCode,
    /// Not a CCYYMMDD calendar date.
    InvalidDate,
}

impl ElementFault {
    /// The X12 data element syntax error code (element 723) a 997's AK403 reports.
    pub fn code(self) -> u8 {
        match self {
            ElementFault::Missing => 1,
            ElementFault::TooLong => 5,
            ElementFault::InvalidCharacter | ElementFault::InvalidNumber => 6,
            ElementFault::InvalidCode => 7,
            ElementFault::InvalidDate => 8,
        }
    }
}

impl fmt::Display for ElementFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ElementFault::Missing => "is missing",
            ElementFault::TooLong => "is too long",
            ElementFault::InvalidCharacter => "holds bytes that are not text",
            ElementFault::InvalidNumber => "is not a number",
            ElementFault::InvalidCode => "is not a known code",
            ElementFault::InvalidDate => "is not a CCYYMMDD date",
        })
    }
}

/// Why an interchange, a functional group or a transaction set could not be read.
///
/// `position` is always the ordinal of the segment in the interchange (ISA = 1). Values
/// quoted from the input are cut to 40 characters, so an error never carries a whole body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum X12Error {
    /// The data does not begin with `ISA`.
    #[error("segment {position}: the data does not start with an ISA segment (found {found:?})")]
    NotAnInterchange {
        /// Always 1.
        position: usize,
        /// The first bytes found instead.
        found: String,
    },
    /// The ISA segment cannot give the delimiters.
    #[error("segment {position} (ISA): {reason}")]
    BadDelimiters {
        /// Always 1.
        position: usize,
        /// What is wrong with them.
        reason: &'static str,
    },
    /// The data ends inside a segment: the file was cut short.
    #[error("segment {position}: the data ends before this segment's terminator")]
    Unterminated {
        /// The unterminated segment.
        position: usize,
    },
    /// Two segment terminators with nothing between them.
    #[error("segment {position}: empty segment")]
    EmptySegment {
        /// The empty segment.
        position: usize,
    },
    /// A segment whose id is not two or three upper-case letters or digits.
    #[error("segment {position}: {id:?} is not a segment id")]
    BadSegmentId {
        /// The segment.
        position: usize,
        /// Its first element, quoted.
        id: String,
    },
    /// A segment where the envelope or the transaction set does not allow it.
    #[error("segment {position} ({found}): expected {expected}")]
    Unexpected {
        /// The segment.
        position: usize,
        /// Its id.
        found: String,
        /// What was allowed there.
        expected: &'static str,
    },
    /// An envelope that is never closed.
    #[error("segment {position}: {} missing before {found}", .envelope.trailer())]
    MissingTrailer {
        /// Where the trailer was expected.
        position: usize,
        /// The envelope left open.
        envelope: Envelope,
        /// What came instead (a segment id, or `end of data`).
        found: String,
    },
    /// IEA01, GE01 or SE01 does not count what its envelope holds.
    #[error(
        "segment {position} ({}): declares {declared:?} but {actual} were counted",
        .envelope.trailer()
    )]
    CountMismatch {
        /// The trailer.
        position: usize,
        /// Whose count: groups in the interchange, sets in the group, segments in the set.
        envelope: Envelope,
        /// The count as sent.
        declared: String,
        /// The count read.
        actual: usize,
    },
    /// IEA02, GE02 or SE02 differs from the control number of its header.
    #[error(
        "segment {position} ({}): control number {found:?} differs from {}'s {expected:?}",
        .envelope.trailer(),
        .envelope.header()
    )]
    ControlMismatch {
        /// The trailer.
        position: usize,
        /// The envelope.
        envelope: Envelope,
        /// The trailer's control number.
        found: String,
        /// The header's control number.
        expected: String,
    },
    /// A functional group (GS01) or transaction set (ST01) this reader does not read.
    #[error("segment {position} ({}): {value:?} is not supported here", .envelope.header())]
    Unsupported {
        /// The header.
        position: usize,
        /// A group or a transaction set.
        envelope: Envelope,
        /// The functional id or transaction set id.
        value: String,
    },
    /// Data after the IEA segment.
    #[error("segment {position}: data after the interchange's IEA")]
    TrailingData {
        /// The first segment after IEA.
        position: usize,
    },
    /// A mandatory segment of the transaction set is absent.
    #[error("segment {position}: no {segment} segment in the transaction set")]
    MissingSegment {
        /// Where it was looked for: the end of the transaction set.
        position: usize,
        /// The segment id.
        segment: &'static str,
    },
    /// A data element is missing or malformed.
    #[error("segment {position} ({segment}{element:02}): {value:?} {fault}")]
    Element {
        /// The segment.
        position: usize,
        /// Its id.
        segment: String,
        /// The element's position in the segment (1 = first after the id).
        element: usize,
        /// What is wrong with it.
        fault: ElementFault,
        /// The value as sent, quoted (empty when missing).
        value: String,
    },
    /// CTT01 differs from the number of PO1 lines read.
    #[error("segment {position} (CTT01): declares {declared} lines but {actual} PO1 were read")]
    LineCount {
        /// The CTT segment.
        position: usize,
        /// CTT01.
        declared: usize,
        /// PO1 segments read.
        actual: usize,
    },
    /// The transaction set is sound but its functional group was rejected, so it is too
    /// (the partner sends the whole group again).
    #[error("segment {position}: its functional group was rejected")]
    GroupRejected {
        /// The transaction set's ST.
        position: usize,
    },
    /// ST02 repeats an earlier set's in the same functional group: a 997 could not say which
    /// of them it acknowledges, so the later one is rejected.
    #[error("segment {position} (ST): control number {control_number:?} is used by an earlier set of its group")]
    DuplicateControlNumber {
        /// The repeating set's ST.
        position: usize,
        /// Its ST02.
        control_number: String,
    },
}

impl X12Error {
    /// The position (ISA = 1) of the segment this error is about.
    pub fn position(&self) -> usize {
        match self {
            X12Error::NotAnInterchange { position, .. }
            | X12Error::BadDelimiters { position, .. }
            | X12Error::Unterminated { position }
            | X12Error::EmptySegment { position }
            | X12Error::BadSegmentId { position, .. }
            | X12Error::Unexpected { position, .. }
            | X12Error::MissingTrailer { position, .. }
            | X12Error::CountMismatch { position, .. }
            | X12Error::ControlMismatch { position, .. }
            | X12Error::Unsupported { position, .. }
            | X12Error::TrailingData { position }
            | X12Error::MissingSegment { position, .. }
            | X12Error::Element { position, .. }
            | X12Error::LineCount { position, .. }
            | X12Error::GroupRejected { position }
            | X12Error::DuplicateControlNumber { position, .. } => *position,
        }
    }
}

/// At most 40 characters of `bytes` as text, for quoting input inside an error.
pub(super) fn quote(bytes: &[u8]) -> String {
    const MAX: usize = 40;
    let text = String::from_utf8_lossy(bytes);
    let mut quoted: String = text.chars().take(MAX).collect();
    if text.chars().nth(MAX).is_some() {
        quoted.push('…');
    }
    quoted
}
