//! The ledger: which records of each partition are open (fetched, not yet finished), where a
//! partition may be committed to, and which records wait behind an earlier one of the same
//! order key. Shared by the stages that work on many records of one topic at once and
//! commit in order behind them (the sink's ERP calls, the enrich stage's fetches).
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
//! - A record can be set aside (its order is not in the ERP yet): its chain goes on with the
//!   next record of the key, but its offset stays open, so nothing is committed past it
//!   until it is resumed (back at the head of its key's chain) and finished, or released
//!   (dead-lettered).

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use rdkafka::message::OwnedMessage;
use rdkafka::Message;

/// A record the engine runs: its message and the ledger epoch it was accepted under.
#[derive(Debug)]
pub struct Ticket {
    /// The record.
    pub message: OwnedMessage,
    /// The epoch of its partition's entry when it was accepted.
    pub epoch: u64,
}

/// What [`Ledger::accept`] made of a record.
#[derive(Debug)]
pub enum Accepted {
    /// No record of its key is open: start it now.
    Start(Ticket),
    /// It waits behind an open record of the same key.
    Queued,
    /// Already accepted once (a refetch): ignored.
    Repeat,
}

/// What finishing a record changed.
#[derive(Debug, Default)]
pub struct Finished {
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

    /// The next record waiting behind `key`'s running one, which starts now; when none
    /// waits, the chain ends.
    fn advance(&mut self, key: Vec<u8>) -> Option<Ticket> {
        match self.chains.get_mut(&key).and_then(VecDeque::pop_front) {
            Some(message) => Some(Ticket {
                message,
                epoch: self.epoch,
            }),
            None => {
                self.chains.remove(&key);
                None
            }
        }
    }
}

/// Every assigned partition's open records and chains.
#[derive(Debug, Default)]
pub struct Ledger {
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
        let next = partition.advance(chain_key(message));
        let position = partition.position();
        let commit = (position > partition.committed).then(|| {
            partition.committed = position;
            position
        });
        Finished { commit, next }
    }

    /// Sets a started record aside: it stays open (the partition's commit position does not
    /// pass it), and its key's chain goes on without it. Returns the next record of the key,
    /// to start now.
    pub fn set_aside(&mut self, ticket: &Ticket) -> Option<Ticket> {
        let message = &ticket.message;
        let partition = self.partitions.get_mut(&message.partition())?;
        if partition.epoch != ticket.epoch || !partition.open.contains(&message.offset()) {
            return None;
        }
        partition.advance(chain_key(message))
    }

    /// Puts a record set aside back at the head of its key's chain: returned to start now
    /// when nothing of its key runs, else queued before the key's waiting records.
    pub fn resume(&mut self, ticket: Ticket) -> Option<Ticket> {
        let message = &ticket.message;
        let partition = self.partitions.get_mut(&message.partition())?;
        if partition.epoch != ticket.epoch || !partition.open.contains(&message.offset()) {
            return None;
        }
        let key = chain_key(message);
        match partition.chains.get_mut(&key) {
            Some(waiting) => {
                waiting.push_front(ticket.message);
                None
            }
            None => {
                partition.chains.insert(key, VecDeque::new());
                Some(ticket)
            }
        }
    }

    /// Finishes a record set aside (dead-lettered): its offset closes; the new commit
    /// position, when it moved.
    pub fn release_aside(&mut self, ticket: &Ticket) -> Option<i64> {
        let message = &ticket.message;
        let partition = self.partitions.get_mut(&message.partition())?;
        if partition.epoch != ticket.epoch || !partition.open.remove(&message.offset()) {
            return None;
        }
        self.open -= 1;
        let position = partition.position();
        (position > partition.committed).then(|| {
            partition.committed = position;
            position
        })
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
    fn a_record_set_aside_lets_its_key_go_on_but_holds_the_commit() {
        let mut ledger = Ledger::default();
        let cancel = start(&mut ledger, 0, 10, "a");
        assert!(matches!(
            ledger.accept(record(0, 11, "a")),
            Accepted::Queued
        ));
        let other = start(&mut ledger, 0, 12, "b");
        // The cancellation's order is not there: the create behind it goes first.
        let create = ledger
            .set_aside(&cancel)
            .expect("the next record of the key");
        assert_eq!(create.message.offset(), 11);
        assert_eq!(ledger.finish(&other).commit, None, "10 is still open");
        // Resumed while the create runs: it waits behind it, at the head of the chain.
        let cancel = Ticket {
            message: record(0, 10, "a"),
            epoch: cancel.epoch,
        };
        assert!(ledger.resume(cancel).is_none());
        let finished = ledger.finish(&create);
        assert_eq!(finished.commit, None, "10 is still open");
        let again = finished.next.expect("the cancellation again");
        assert_eq!(again.message.offset(), 10);
        assert_eq!(ledger.finish(&again).commit, Some(13));
        // Released instead (dead-lettered): its offset closes.
        let status = start(&mut ledger, 0, 13, "c");
        assert!(ledger.set_aside(&status).is_none());
        assert_eq!(ledger.release_aside(&status), Some(14));
        assert_eq!(ledger.open(), 0);
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
