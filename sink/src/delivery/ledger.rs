//! The ledger: which records of each partition are open (fetched, not yet finished), where a
//! partition may be committed to, and which records wait behind an earlier one of the same
//! order key.
//!
//! Pure bookkeeping, no I/O: the engine asks it what to start and what to commit.
//!
//! - A partition's commit position is its lowest open offset, or one past the last record
//!   accepted when none is open. So the committed offset never passes an unfinished record,
//!   however the records of different keys finish.
//! - Records of one key form a chain: the first is started, the rest wait in offset order and
//!   start one by one as their predecessor finishes.
//! - A record below a partition's next expected offset is a repeat (the consumer fetched it
//!   again after a pause) and is ignored: it is already open or finished.
//! - Each partition's entry carries an epoch. After a rebalance a partition that left and came
//!   back gets a new epoch, and a record finishing under the old one changes nothing.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use rdkafka::message::OwnedMessage;
use rdkafka::Message;

/// A record the engine runs: its message and the ledger epoch it was accepted under.
#[derive(Debug)]
pub(crate) struct Ticket {
    pub message: OwnedMessage,
    pub epoch: u64,
}

/// What [`Ledger::accept`] made of a record.
#[derive(Debug)]
pub(crate) enum Accepted {
    /// No record of its key is open: start it now.
    Start(Ticket),
    /// It waits behind an open record of the same key.
    Queued,
    /// Already accepted once (a refetch): ignored.
    Repeat,
}

/// What finishing a record changed.
#[derive(Debug, Default)]
pub(crate) struct Finished {
    /// The partition's new commit position, when it moved.
    pub commit: Option<i64>,
    /// The next record of the same key, to start now.
    pub next: Option<Ticket>,
}

#[derive(Debug)]
struct Partition {
    epoch: u64,
    /// Offsets accepted and not yet finished.
    open: BTreeSet<i64>,
    /// One past the highest offset accepted.
    next: i64,
    /// The commit position last handed out.
    committed: i64,
    /// Key → the records waiting behind the open one of that key. A key is present while a
    /// record of it is open.
    chains: HashMap<Vec<u8>, VecDeque<OwnedMessage>>,
}

impl Partition {
    fn position(&self) -> i64 {
        self.open.first().copied().unwrap_or(self.next)
    }
}

/// Every assigned partition's open records and chains.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    partitions: HashMap<i32, Partition>,
    epochs: u64,
    open: usize,
}

/// The chain key of a record: its Kafka key (the order key). Records without a key share one
/// chain per partition, so they stay in offset order.
fn chain_key(message: &OwnedMessage) -> Vec<u8> {
    message.key().unwrap_or_default().to_vec()
}

impl Ledger {
    /// Records accepted and not finished, over all partitions (started or waiting).
    pub fn open(&self) -> usize {
        self.open
    }

    /// Takes a fetched record.
    pub fn accept(&mut self, message: OwnedMessage) -> Accepted {
        let offset = message.offset();
        let epochs = &mut self.epochs;
        let partition = self
            .partitions
            .entry(message.partition())
            .or_insert_with(|| {
                *epochs += 1;
                Partition {
                    epoch: *epochs,
                    open: BTreeSet::new(),
                    next: offset,
                    committed: offset,
                    chains: HashMap::new(),
                }
            });
        if offset < partition.next {
            return Accepted::Repeat;
        }
        partition.next = offset + 1;
        partition.open.insert(offset);
        self.open += 1;
        let epoch = partition.epoch;
        match partition.chains.get_mut(&chain_key(&message)) {
            Some(waiting) => {
                waiting.push_back(message);
                Accepted::Queued
            }
            None => {
                partition
                    .chains
                    .insert(chain_key(&message), VecDeque::new());
                Accepted::Start(Ticket { message, epoch })
            }
        }
    }

    /// Marks a started record finished (upserted or dead-lettered).
    pub fn finish(&mut self, ticket: &Ticket) -> Finished {
        let message = &ticket.message;
        let Some(partition) = self.partitions.get_mut(&message.partition()) else {
            return Finished::default(); // revoked meanwhile
        };
        if partition.epoch != ticket.epoch || !partition.open.remove(&message.offset()) {
            return Finished::default(); // revoked and assigned again meanwhile
        }
        self.open -= 1;
        let key = chain_key(message);
        let next = match partition.chains.get_mut(&key).and_then(VecDeque::pop_front) {
            Some(message) => Some(Ticket {
                message,
                epoch: partition.epoch,
            }),
            None => {
                partition.chains.remove(&key);
                None
            }
        };
        let position = partition.position();
        let commit = (position > partition.committed).then(|| {
            partition.committed = position;
            position
        });
        Finished { commit, next }
    }

    /// Forgets the partitions not in `assigned`: their waiting records are dropped (their new
    /// owner reads them from the committed offset) and records still running for them change
    /// nothing when they finish.
    pub fn retain(&mut self, assigned: &HashSet<i32>) {
        let before = self.partitions.len();
        self.partitions.retain(|id, _| assigned.contains(id));
        if self.partitions.len() != before {
            self.open = self.partitions.values().map(|p| p.open.len()).sum();
        }
    }

    /// The partitions in the ledger.
    pub fn partitions(&self) -> impl Iterator<Item = i32> + '_ {
        self.partitions.keys().copied()
    }

    /// Whether `partition` is in the ledger.
    #[cfg(test)]
    fn has(&self, partition: i32) -> bool {
        self.partitions.contains_key(&partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::message::Timestamp;

    fn record(partition: i32, offset: i64, key: &str) -> OwnedMessage {
        OwnedMessage::new(
            Some(Vec::new()),
            Some(key.as_bytes().to_vec()),
            "orders.canonical.v1".into(),
            Timestamp::NotAvailable,
            partition,
            offset,
            None,
        )
    }

    fn start(ledger: &mut Ledger, partition: i32, offset: i64, key: &str) -> Ticket {
        match ledger.accept(record(partition, offset, key)) {
            Accepted::Start(ticket) => ticket,
            other @ (Accepted::Queued | Accepted::Repeat) => {
                panic!("expected a start, got {other:?}")
            }
        }
    }

    #[test]
    fn the_commit_position_never_passes_an_unfinished_record() {
        let mut ledger = Ledger::default();
        let a = start(&mut ledger, 0, 10, "a");
        let b = start(&mut ledger, 0, 11, "b");
        let c = start(&mut ledger, 0, 12, "c");
        assert_eq!(ledger.open(), 3);
        // The later ones finish first: nothing may be committed past offset 10.
        assert_eq!(ledger.finish(&c).commit, None);
        assert_eq!(ledger.finish(&b).commit, None);
        // Once 10 finishes, the position jumps past all three.
        assert_eq!(ledger.finish(&a).commit, Some(13));
        assert_eq!(ledger.open(), 0);
    }

    #[test]
    fn records_of_one_key_run_one_after_another_in_offset_order() {
        let mut ledger = Ledger::default();
        let first = start(&mut ledger, 1, 0, "order-1");
        assert!(matches!(
            ledger.accept(record(1, 1, "order-1")),
            Accepted::Queued
        ));
        let other = start(&mut ledger, 1, 2, "order-2");
        assert!(matches!(
            ledger.accept(record(1, 3, "order-1")),
            Accepted::Queued
        ));
        assert_eq!(ledger.finish(&other).commit, None, "offset 0 is still open");
        let finished = ledger.finish(&first);
        assert_eq!(finished.commit, Some(1));
        let second = finished.next.expect("the next update of order-1");
        assert_eq!(second.message.offset(), 1);
        let finished = ledger.finish(&second);
        assert_eq!(finished.commit, Some(3), "offset 2 finished earlier");
        let third = finished.next.expect("the last update of order-1");
        assert_eq!(third.message.offset(), 3);
        let finished = ledger.finish(&third);
        assert_eq!(finished.commit, Some(4));
        assert!(finished.next.is_none());
        // The chain is gone: a new record of the key starts at once.
        start(&mut ledger, 1, 4, "order-1");
    }

    #[test]
    fn refetched_records_are_ignored() {
        let mut ledger = Ledger::default();
        let first = start(&mut ledger, 0, 5, "a");
        assert!(matches!(ledger.accept(record(0, 5, "a")), Accepted::Repeat));
        assert_eq!(ledger.open(), 1);
        assert_eq!(ledger.finish(&first).commit, Some(6));
        assert!(matches!(ledger.accept(record(0, 5, "a")), Accepted::Repeat));
    }

    #[test]
    fn revoked_partitions_are_forgotten_and_their_late_finishes_ignored() {
        let mut ledger = Ledger::default();
        let old = start(&mut ledger, 0, 7, "a");
        start(&mut ledger, 1, 3, "b");
        ledger.retain(&HashSet::from([1]));
        assert!(!ledger.has(0));
        assert_eq!(ledger.open(), 1);
        // Partition 0 comes back; the record that ran under the old assignment finishes late.
        let again = start(&mut ledger, 0, 7, "a");
        let late = ledger.finish(&old);
        assert!(late.commit.is_none() && late.next.is_none());
        assert_eq!(ledger.finish(&again).commit, Some(8));
    }
}
