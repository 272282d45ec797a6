//! The distributed aggregator: one active instance, chosen by a lease in
//! JetStream KV, consumes the usage staging stream into the shared roll-up
//! store and the archive.
//!
//! The lease is a key in a KV bucket whose entries expire after `ttl`: whoever
//! creates the key holds it and renews it (compare-and-set on its revision)
//! every `ttl / 3`; a holder that dies or stalls loses it after `ttl` and a
//! standby's `create` succeeds. The lease keeps the work in one place; safety
//! does not depend on it: a stalled former holder that still applies a batch
//! counts nothing twice (record ids) and archive readers drop duplicate rows.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind, consumer::pull, kv};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::archive::Archive;
use crate::error::{PipelineError, stream};
use crate::record::UsageRecord;
use crate::ship::{CONSUMER, STREAM, ensure_usage_stream};
use crate::store::UsageStore;

/// The KV bucket holding leases, and the aggregator's key in it.
const BUCKET: &str = "RESIZER_LEASES";
const KEY: &str = "aggregator";
/// Records taken per batch.
const BATCH: usize = 1000;

/// Settings of a stream aggregator.
#[derive(Debug, Clone)]
pub struct StreamAggregatorConfig {
    /// NATS servers.
    pub servers: Vec<String>,
    /// Replicas of the stream and the lease bucket.
    pub replicas: usize,
    /// This instance's name, written into the lease.
    pub name: String,
    /// How long a lease outlives its holder's last renewal.
    pub lease_ttl: Duration,
    /// This role's NATS user and TLS trust.
    pub access: resizer_core::credentials::NatsAccess,
}

/// Consumes `RESIZER_USAGE` while holding the lease.
pub struct StreamAggregator {
    config: StreamAggregatorConfig,
    js: jetstream::Context,
    store: Arc<dyn UsageStore>,
    archive: Arc<Archive>,
}

/// A NATS failure of operation `op`.
fn err<E: std::error::Error + Send + Sync + 'static>(op: &'static str) -> impl FnOnce(E) -> PipelineError {
    move |e| stream(op)(Box::new(e))
}

impl StreamAggregator {
    /// Connects to NATS and makes sure the stream exists.
    pub async fn connect(
        config: StreamAggregatorConfig,
        store: Arc<dyn UsageStore>,
        archive: Arc<Archive>,
    ) -> Result<Self, PipelineError> {
        let client = resizer_queue::jetstream::nats_options(&config.access)
            .connection_timeout(Duration::from_secs(1))
            .ping_interval(Duration::from_secs(1))
            .retry_on_initial_connect()
            .name(format!("resizer-{}", config.name))
            .connect(config.servers.clone())
            .await
            .map_err(err("connect"))?;
        let js = jetstream::new(client);
        ensure_usage_stream(&js, config.replicas).await?;
        Ok(Self {
            config,
            js,
            store,
            archive,
        })
    }

    async fn lease_bucket(&self) -> Result<kv::Store, PipelineError> {
        if let Ok(store) = self.js.get_key_value(BUCKET).await {
            return Ok(store);
        }
        self.js
            .create_key_value(kv::Config {
                bucket: BUCKET.into(),
                history: 1,
                max_age: self.config.lease_ttl,
                num_replicas: self.config.replicas.max(1),
                ..Default::default()
            })
            .await
            .map_err(err("create the lease bucket"))
    }

    /// Runs until `shutdown` is cancelled; releases the lease on the way out.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), PipelineError> {
        let consumer = self.consumer().await?;
        let leases = self.lease_bucket().await?;
        let mut held: Option<(u64, Instant)> = None;
        let mut last_housekeeping: Option<Instant> = None;
        while !shutdown.is_cancelled() {
            held = self.keep_lease(&leases, held).await;
            if held.is_none() {
                tokio::select! {
                    _ = tokio::time::sleep(self.config.lease_ttl / 3) => {}
                    () = shutdown.cancelled() => {}
                }
                continue;
            }
            if let Err(e) = self.one_batch(&consumer).await {
                tracing::error!(error = %e, "usage batch failed; it will be redelivered");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            if last_housekeeping.is_none_or(|t| t.elapsed() >= crate::aggregator::HOUSEKEEPING_EVERY) {
                crate::aggregator::housekeeping(&self.archive, self.store.as_ref()).await;
                last_housekeeping = Some(Instant::now());
            }
        }
        if held.is_some() {
            let _ = leases.delete(KEY).await;
            tracing::info!("released the aggregator lease");
        }
        Ok(())
    }

    /// The aggregators' shared durable consumer of the staging stream.
    async fn consumer(&self) -> Result<jetstream::consumer::PullConsumer, PipelineError> {
        let stream = self.js.get_stream(STREAM).await.map_err(err("get the stream"))?;
        stream
            .get_or_create_consumer(
                CONSUMER,
                pull::Config {
                    durable_name: Some(CONSUMER.into()),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: Duration::from_secs(30),
                    max_ack_pending: 100_000,
                    ..Default::default()
                },
            )
            .await
            .map_err(err("create the consumer"))
    }

    /// Takes the lease when free, renews it every third of its TTL; returns
    /// the lease's revision and when it was taken or renewed, or `None`
    /// when another aggregator holds it.
    async fn keep_lease(&self, leases: &kv::Store, held: Option<(u64, Instant)>) -> Option<(u64, Instant)> {
        let name = bytes::Bytes::from(self.config.name.clone());
        match held {
            None => {
                let revision = leases.create(KEY, name).await.ok()?;
                tracing::info!(name = %self.config.name, "acquired the aggregator lease");
                metrics::gauge!("resizer_aggregator_active").set(1.0);
                Some((revision, Instant::now()))
            }
            Some((revision, at)) if at.elapsed() >= self.config.lease_ttl / 3 => {
                match leases.update(KEY, name, revision).await {
                    Ok(next) => Some((next, Instant::now())),
                    Err(e) => {
                        tracing::warn!(error = %e, "lost the aggregator lease; standing by");
                        metrics::gauge!("resizer_aggregator_active").set(0.0);
                        None
                    }
                }
            }
            held => held,
        }
    }

    /// Takes up to one batch, counts it, archives it, then acks it.
    async fn one_batch(&self, consumer: &jetstream::consumer::PullConsumer) -> Result<usize, PipelineError> {
        let mut batch = consumer
            .batch()
            .max_messages(BATCH)
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .map_err(err("fetch"))?;
        let mut messages = Vec::new();
        while let Ok(Some(next)) = tokio::time::timeout(Duration::from_secs(2), batch.next()).await {
            messages.push(next.map_err(|e| stream("fetch")(e))?);
        }
        let mut records: Vec<UsageRecord> = Vec::with_capacity(messages.len());
        let mut keep = Vec::with_capacity(messages.len());
        for m in messages {
            match serde_json::from_slice(&m.payload) {
                Ok(r) => {
                    records.push(r);
                    keep.push(m);
                }
                Err(e) => {
                    tracing::error!(error = %e, "a usage message is not a record; terminating it");
                    let _ = m.ack_with(AckKind::Term).await;
                }
            }
        }
        if records.is_empty() {
            return Ok(0);
        }
        let fresh = self.store.apply(&records).await?;
        self.archive.file_records(&records).await?;
        for m in keep {
            m.ack().await.map_err(|e| stream("ack")(e))?;
        }
        metrics::counter!("resizer_usage_records_aggregated_total").increment(records.len() as u64);
        Ok(fresh)
    }
}
