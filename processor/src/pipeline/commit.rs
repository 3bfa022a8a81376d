//! Making a batch count: one transaction (exactly-once) or deliveries then stored offsets
//! (at-least-once), the offsets it moves to, and the rewind when it does not count.

use std::collections::BTreeMap;

use orderbridge_runtime::Dependency;
use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};

use super::records::Output;
use super::{is_fatal, transactional, BatchError, Pipeline, KAFKA_TIMEOUT};
use crate::state::PartitionStates;
use crate::ProcessorError;

impl Pipeline {
    /// The offsets a committed batch moves to: past each attribution record of the batch
    /// (`attribution_next`), and for each raw partition past every record taken in but never
    /// past a held one.
    pub(super) fn commit_offsets(
        &self,
        states: &mut PartitionStates,
        attribution_next: &BTreeMap<i32, i64>,
    ) -> KafkaResult<TopicPartitionList> {
        let mut offsets = TopicPartitionList::new();
        for (partition, next) in attribution_next {
            offsets.add_partition_offset(
                &self.topics.attribution,
                *partition,
                Offset::Offset(*next),
            )?;
        }
        for (partition, state) in states.iter_mut() {
            if let Some(offset) = state.commit_offset() {
                offsets.add_partition_offset(
                    &self.topics.raw,
                    partition,
                    Offset::Offset(offset),
                )?;
            }
        }
        Ok(offsets)
    }

    pub(super) async fn commit_transactionally(
        &self,
        outputs: Vec<Output>,
        offsets: TopicPartitionList,
    ) -> Result<(), BatchError> {
        let group = self.consumer.consumer().group_metadata().ok_or_else(|| {
            BatchError::Retry(
                "consumer has no group metadata yet".into(),
                Dependency::Kafka,
            )
        })?;
        self.producer.begin_transaction().map_err(transactional)?;
        let mut deliveries = Vec::with_capacity(outputs.len());
        for output in &outputs {
            let record = output.record();
            match self.producer.send_result(record) {
                Ok(delivery) => deliveries.push(delivery),
                Err((err, _)) => return Err(self.abort(err).await),
            }
        }
        // Every output acknowledged before the commit is asked for. rdkafka's
        // `commit_transaction` flushes first, and its flush, finding anything in flight,
        // polls in steps of 100 ms that always run to their end: a commit of outputs still in
        // flight took 100 ms however soon they were acknowledged, and that step was most of
        // an order's time from webhook to ERP. Awaited here, the flush finds nothing to wait
        // for and the commit is the EndTxn round trip alone.
        for delivery in deliveries {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((err, _))) => return Err(self.abort(err).await),
                Err(_canceled) => {
                    return Err(self.abort(KafkaError::Canceled).await);
                }
            }
        }
        let producer = self.producer.clone();
        let committed = tokio::task::spawn_blocking(move || {
            settle(&producer);
            producer.send_offsets_to_transaction(&offsets, &group, KAFKA_TIMEOUT)?;
            // Flushes every output, then commits them with the offsets atomically. A
            // retriable error leaves the transaction committing: the commit may be called
            // again (librdkafka's documented recovery); anything else is handled by `abort`.
            let mut attempts = 0;
            loop {
                match producer.commit_transaction(KAFKA_TIMEOUT) {
                    Err(KafkaError::Transaction(err)) if err.is_retriable() && attempts < 3 => {
                        attempts += 1;
                        tracing::warn!(error = %err, attempts, "commit_transaction retriable; retrying");
                    }
                    result => return result,
                }
            }
        })
        .await
        .map_err(|join| BatchError::Fatal(ProcessorError::Join(join)))?;
        if let Err(err) = committed {
            return Err(self.abort(err).await);
        }
        self.count(&outputs);
        Ok(())
    }

    /// Aborts the open transaction after `err`, so the batch can be retried. A fatal error
    /// (the producer was fenced) or a failed abort ends the run instead: only a new producer
    /// can go on.
    pub(super) async fn abort(&self, err: KafkaError) -> BatchError {
        if is_fatal(&err) {
            return BatchError::Fatal(err.into());
        }
        let producer = self.producer.clone();
        match tokio::task::spawn_blocking(move || producer.abort_transaction(KAFKA_TIMEOUT)).await {
            Ok(Ok(())) => {
                BatchError::Retry(format!("transaction aborted: {err}"), Dependency::Kafka)
            }
            Ok(Err(abort_err)) => {
                // The abort's own error is what ends the run; the error that made us abort
                // is the cause an operator needs, so it is logged with it.
                tracing::error!(cause = %err, error = %abort_err, "transaction could not be aborted");
                BatchError::Fatal(abort_err.into())
            }
            Err(join) => BatchError::Fatal(ProcessorError::Join(join)),
        }
    }

    pub(super) async fn deliver_then_store(
        &self,
        outputs: Vec<Output>,
        offsets: TopicPartitionList,
    ) -> Result<(), BatchError> {
        let mut deliveries = Vec::with_capacity(outputs.len());
        for output in &outputs {
            let record = output.record();
            deliveries.push(self.producer.send(record, Timeout::After(KAFKA_TIMEOUT)));
        }
        for result in futures::future::join_all(deliveries).await {
            if let Err((err, _)) = result {
                return Err(BatchError::Retry(
                    format!("delivery failed: {err}"),
                    Dependency::Kafka,
                ));
            }
        }
        // Every output is acknowledged; only now may the consumed offsets move.
        self.consumer
            .consumer()
            .store_offsets(&offsets)
            .map_err(|err| {
                BatchError::Retry(format!("storing offsets: {err}"), Dependency::Kafka)
            })?;
        self.count(&outputs);
        Ok(())
    }

    pub(super) fn count(&self, outputs: &[Output]) {
        for output in outputs {
            if let Some(outcome) = output.outcome {
                self.metrics
                    .records
                    .with_label_values(&[output.source, outcome])
                    .inc();
            }
        }
    }
}

/// Waits (briefly) until the producer has nothing in flight. A delivery future resolves while
/// its report is being handled, a moment before librdkafka counts the message as done; a
/// commit in that moment would pay the flush's 100 ms step (see `commit_transactionally`).
fn settle(producer: &FutureProducer) {
    let until = std::time::Instant::now() + SETTLE_AT_MOST;
    while producer.in_flight_count() > 0 && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_micros(100));
    }
}

/// How long [`settle`] waits at most; past it, the commit flushes what is left itself.
const SETTLE_AT_MOST: std::time::Duration = std::time::Duration::from_millis(20);
