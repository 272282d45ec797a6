//! Shipping closed log segments from an API node to the staging stream.
//!
//! Distributed mode: records go to a replicated JetStream stream, each with its
//! record id as `Nats-Msg-Id`, so a segment shipped twice (a failure halfway,
//! a restart) is stored once within the duplicate window, and the aggregator's
//! record-id check covers anything older. A segment is deleted only after every
//! record in it was acknowledged; while the stream is unreachable or full the
//! local log is the buffer, bounded by the disk, with a metric and a log line.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::stream::{DiscardPolicy, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, message::PublishMessage};
use async_trait::async_trait;

use crate::error::{PipelineError, stream};
use crate::log::{UsageLog, read_segment};
use crate::record::UsageRecord;

/// The staging stream's name and subject.
pub const STREAM: &str = "RESIZER_USAGE";
/// Subject records are published on.
pub const SUBJECT: &str = "resizer.usage";
/// The aggregators' durable consumer of the stream.
pub const CONSUMER: &str = "aggregator";

/// Where shipped records go.
#[async_trait]
pub trait UsageSink: Send + Sync {
    /// Stores every record or fails; partial success is fine (records are idempotent).
    async fn send(&self, records: &[UsageRecord]) -> Result<(), PipelineError>;
}

/// The replicated JetStream staging stream.
pub struct JetStreamUsageSink {
    js: jetstream::Context,
    timeout: Duration,
}

impl JetStreamUsageSink {
    /// Connects and creates the stream if missing (`replicas` 3 on a cluster).
    pub async fn connect(
        servers: Vec<String>,
        replicas: usize,
        access: &resizer_core::credentials::NatsAccess,
    ) -> Result<Self, PipelineError> {
        let client = resizer_queue::jetstream::nats_options(access)
            .connection_timeout(Duration::from_secs(1))
            .ping_interval(Duration::from_secs(2))
            .retry_on_initial_connect()
            .name("resizer-usage")
            .connect(servers)
            .await
            .map_err(|e| stream("connect")(e.into()))?;
        let js = jetstream::new(client);
        let sink = Self {
            js,
            timeout: Duration::from_secs(5),
        };
        ensure_usage_stream(&sink.js, replicas).await?;
        Ok(sink)
    }
}

/// Creates the staging stream if missing (`replicas` 3 on a cluster).
pub async fn ensure_usage_stream(js: &jetstream::Context, replicas: usize) -> Result<(), PipelineError> {
    let config = jetstream::stream::Config {
        name: STREAM.into(),
        subjects: vec![SUBJECT.into()],
        retention: RetentionPolicy::WorkQueue,
        // Full means the aggregator is far behind: API nodes keep buffering locally.
        discard: DiscardPolicy::New,
        max_bytes: 1024 * 1024 * 1024,
        storage: StorageType::File,
        num_replicas: replicas.max(1),
        duplicate_window: Duration::from_secs(600),
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match js.get_or_create_stream(config.clone()).await {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(stream("create the stream")(e.into())),
            Err(e) => {
                tracing::info!(error = %e, "usage stream not ready yet; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

#[async_trait]
impl UsageSink for JetStreamUsageSink {
    async fn send(&self, records: &[UsageRecord]) -> Result<(), PipelineError> {
        // Pipelined: publish all, then wait for every ack.
        let mut acks = Vec::with_capacity(records.len());
        for r in records {
            let payload = serde_json::to_vec(r)?;
            let message = PublishMessage::build()
                .payload(payload.into())
                .message_id(r.record_id.as_str());
            let ack = tokio::time::timeout(self.timeout, self.js.send_publish(SUBJECT, message))
                .await
                .map_err(|_| PipelineError::Timeout("publish"))?
                .map_err(|e| stream("publish")(e.into()))?;
            acks.push(ack);
        }
        for ack in acks {
            tokio::time::timeout(self.timeout, ack.into_future())
                .await
                .map_err(|_| PipelineError::Timeout("publish ack"))?
                .map_err(|e| stream("publish ack")(e.into()))?;
        }
        Ok(())
    }
}

/// Ships closed segments every `every` until the task is dropped.
pub async fn ship_forever(log: Arc<UsageLog>, sink: Arc<dyn UsageSink>, every: Duration) {
    let mut failing_since: Option<Instant> = None;
    loop {
        match ship_once(&log, sink.as_ref()).await {
            Ok(shipped) => {
                if let Some(since) = failing_since.take() {
                    tracing::info!(down_for = ?since.elapsed(), shipped, "usage staging reachable again; shipping resumed");
                }
            }
            Err(e) => {
                metrics::counter!("resizer_usage_ship_failures_total").increment(1);
                if failing_since.is_none() {
                    failing_since = Some(Instant::now());
                    tracing::warn!(error = %e, "usage staging unavailable; records stay in the local log until it returns");
                }
            }
        }
        tokio::time::sleep(every).await;
    }
}

/// Ships every closed segment, oldest first; returns the records shipped.
pub async fn ship_once(log: &UsageLog, sink: &dyn UsageSink) -> Result<usize, PipelineError> {
    let mut shipped = 0;
    for segment in log.ready_segments()? {
        let (records, _torn) = read_segment(&segment)?;
        for chunk in records.chunks(1000) {
            sink.send(chunk).await?;
        }
        std::fs::remove_file(&segment)?;
        shipped += records.len();
        metrics::counter!("resizer_usage_records_shipped_total").increment(records.len() as u64);
    }
    Ok(shipped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::UsageLogConfig;
    use crate::record::tests::record;
    use resizer_core::ids::TenantId;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[derive(Default)]
    struct Memory {
        down: AtomicBool,
        got: Mutex<Vec<UsageRecord>>,
    }

    #[async_trait]
    impl UsageSink for Memory {
        async fn send(&self, records: &[UsageRecord]) -> Result<(), PipelineError> {
            if self.down.load(Ordering::Relaxed) {
                return Err(PipelineError::Timeout("publish"));
            }
            self.got.lock().unwrap().extend_from_slice(records);
            Ok(())
        }
    }

    #[tokio::test]
    async fn test_segments_wait_while_staging_is_down_and_ship_once_it_returns() {
        let dir = tempfile::tempdir().unwrap();
        let log = UsageLog::open(UsageLogConfig::new(dir.path().to_path_buf())).unwrap();
        let sink = Memory::default();
        let t = TenantId::random();
        let written: Vec<_> = (0..5).map(|i| record(&t, i, 200)).collect();
        for r in &written {
            log.append(r).unwrap();
        }
        log.sync(true).unwrap();
        sink.down.store(true, Ordering::Relaxed);
        assert!(ship_once(&log, &sink).await.is_err());
        assert_eq!(log.ready_segments().unwrap().len(), 1, "kept locally");
        sink.down.store(false, Ordering::Relaxed);
        assert_eq!(ship_once(&log, &sink).await.unwrap(), 5);
        assert!(log.ready_segments().unwrap().is_empty());
        assert_eq!(*sink.got.lock().unwrap(), written);
    }
}
