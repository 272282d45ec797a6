//! The invariants, checked at a quiet point (load paused, every request
//! answered), and the figures of each fault.
//!
//! - every request got exactly one answer; a 200 is that request's own image
//!   (size and colour: another tenant's shows), anything else the contract's
//!   JSON 429/503/504;
//! - every job published was acknowledged by a worker (JetStream's count of
//!   published against the consumer's ack floor, and nothing pending);
//! - per tenant, the roll-up's successes equal the 200s clients saw (none lost,
//!   none counted twice), never more requests than were sent;
//! - one audit record per metered request, each of its own tenant.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use crate::cluster::{Cluster, StreamState};
use crate::workload::{Outcome, Sample};

/// How long the checker waits for the system to converge before calling a
/// difference a violation.
const CONVERGE: Duration = Duration::from_secs(60);

/// Figures of one window of requests.
#[derive(Debug, Default, Clone)]
pub struct Window {
    pub requests: usize,
    pub ok: usize,
    pub errors: BTreeMap<String, usize>,
    pub p99_ms: Option<u64>,
}

impl Window {
    pub fn of(samples: &[Sample], from: Duration, to: Duration) -> Self {
        let mut w = Window::default();
        let mut latencies = Vec::new();
        for s in samples.iter().filter(|s| s.sent >= from && s.sent < to) {
            w.requests += 1;
            latencies.push(s.latency);
            let kind = match &s.outcome {
                Outcome::Ok => {
                    w.ok += 1;
                    continue;
                }
                Outcome::Refused(code) => format!("{} {code}", s.status),
                Outcome::Edge(status) => format!("{status} haproxy"),
                Outcome::Wrong(_) => "WRONG".into(),
                Outcome::NoAnswer(_) => "NO ANSWER".into(),
            };
            *w.errors.entry(kind).or_default() += 1;
        }
        w.p99_ms = p99(&mut latencies).map(|d| d.as_millis() as u64);
        w
    }

    pub fn availability(&self) -> f64 {
        if self.requests == 0 {
            return 100.0;
        }
        100.0 * self.ok as f64 / self.requests as f64
    }

    pub fn errors_text(&self) -> String {
        if self.errors.is_empty() {
            return "—".into();
        }
        let parts: Vec<String> = self.errors.iter().map(|(k, v)| format!("{v}× {k}")).collect();
        parts.join(", ")
    }
}

fn p99(latencies: &mut [Duration]) -> Option<Duration> {
    if latencies.is_empty() {
        return None;
    }
    latencies.sort();
    let i = ((latencies.len() as f64) * 0.99).ceil() as usize;
    Some(latencies[i.clamp(1, latencies.len()) - 1])
}

/// Time from `heal` to the first 200, and to the first 2-s window (≥ 5
/// requests) wholly 200 with p99 under 500 ms.
pub fn recovery(samples: &[Sample], heal: Duration) -> (Option<Duration>, Option<Duration>) {
    let mut after: Vec<&Sample> = samples.iter().filter(|s| s.sent >= heal).collect();
    after.sort_by_key(|s| s.sent);
    let first_ok = after
        .iter()
        .find(|s| s.outcome == Outcome::Ok)
        .map(|s| s.sent - heal);
    let end = after.last().map(|s| s.sent).unwrap_or(heal);
    let mut start = heal;
    while start + Duration::from_secs(2) <= end {
        let mut window: Vec<&&Sample> = after
            .iter()
            .filter(|s| s.sent >= start && s.sent < start + Duration::from_secs(2))
            .collect();
        let all_ok = window.iter().all(|s| s.outcome == Outcome::Ok);
        let mut lat: Vec<Duration> = window.iter_mut().map(|s| s.latency).collect();
        if window.len() >= 5 && all_ok && p99(&mut lat).is_some_and(|p| p < Duration::from_millis(500)) {
            return (first_ok, Some(start - heal));
        }
        start += Duration::from_millis(250);
    }
    (first_ok, None)
}

/// What the clients saw, per tenant.
#[derive(Debug, Default, Clone, Copy)]
pub struct Seen {
    pub sent: u64,
    pub ok: u64,
    /// HAProxy's answer for a node that died mid-answer: the node may have
    /// served and metered it; the only slack the usage check allows.
    pub cut_off: u64,
}

pub fn seen(samples: &[Sample], tenants: usize) -> Vec<Seen> {
    let mut out = vec![Seen::default(); tenants];
    for s in samples {
        let t = &mut out[s.tenant];
        t.sent += 1;
        match s.outcome {
            Outcome::Ok => t.ok += 1,
            Outcome::Edge(_) => t.cut_off += 1,
            _ => {}
        }
    }
    out
}

/// The verdict of one quiet point: violations (empty = the invariants hold) and evidence.
#[derive(Debug, Default)]
pub struct Verdict {
    pub violations: Vec<String>,
    pub evidence: Vec<String>,
}

pub struct Checker<'a> {
    pub cluster: &'a Cluster,
    pub tenants: &'a [(String, String)],
    /// Unix seconds when the run began (audit queries start before it).
    pub began_unix: i64,
    /// Warm-up requests per tenant (metered, not in the samples).
    pub probes: Vec<u64>,
}

impl Checker<'_> {
    pub async fn check(&self, samples: &[Sample]) -> Verdict {
        let mut v = Verdict::default();
        self.service(&mut v).await;
        self.answers(samples, &mut v);
        self.jobs(&mut v).await;
        self.usage(samples, &mut v).await;
        v
    }

    /// Back to full service: every component running, JetStream on all three
    /// servers (a server that shut it down leaves the streams one failure from
    /// losing quorum, however well requests are served).
    async fn service(&self, v: &mut Verdict) {
        let started = Instant::now();
        let (mut stopped, mut jetstream) = (Vec::new(), 0);
        while started.elapsed() < CONVERGE {
            let status = self.cluster.status();
            stopped = status
                .lines()
                .filter(|l| !l.contains(" running "))
                .map(str::to_string)
                .collect();
            jetstream = self.cluster.jetstream_servers().await;
            if stopped.is_empty() && jetstream == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        v.evidence.push(format!(
            "service: {} components not running, JetStream on {jetstream} of 3 servers",
            stopped.len()
        ));
        if !stopped.is_empty() || jetstream != 3 {
            v.violations.push(format!(
                "not back to full service: stopped {stopped:?}, JetStream on {jetstream} of 3"
            ));
        }
    }

    fn answers(&self, samples: &[Sample], v: &mut Verdict) {
        let bad: Vec<&Sample> = samples
            .iter()
            .filter(|s| matches!(s.outcome, Outcome::Wrong(_) | Outcome::NoAnswer(_)))
            .collect();
        v.evidence.push(format!(
            "answers: {} requests, {} wrong or unanswered",
            samples.len(),
            bad.len()
        ));
        for s in bad.iter().take(5) {
            v.violations.push(format!(
                "tenant {} request at {:?}: {:?}",
                s.tenant, s.sent, s.outcome
            ));
        }
    }

    async fn jobs(&self, v: &mut Verdict) {
        let started = Instant::now();
        let mut streams: Vec<StreamState> = Vec::new();
        while started.elapsed() < CONVERGE {
            streams = self.cluster.job_streams().await;
            if streams.len() == 3 && streams.iter().all(StreamState::drained) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let published: u64 = streams.iter().map(|s| s.published).sum();
        let acked: u64 = streams.iter().map(|s| s.acked).sum();
        v.evidence.push(format!(
            "jobs: {published} published into {} streams, {acked} acknowledged by workers",
            streams.len()
        ));
        v.evidence.push(self.job_counters().await);
        if streams.len() != 3 || !streams.iter().all(StreamState::drained) {
            v.violations
                .push(format!("jobs not drained after {CONVERGE:?}: {streams:?}"));
        }
    }

    /// The same jobs from the processes' side (counters since each one's last
    /// start): publishes the API nodes saw acknowledged, and how workers ended them.
    async fn job_counters(&self) -> String {
        let base = self.cluster.port_base;
        let mut text = String::new();
        for (name, port) in [("api-1", base + 51), ("api-2", base + 52)] {
            text.push_str(&self.cluster.metrics(name, port).await);
        }
        let published = sum(&text, "resizer_queue_publish_total{outcome=\"ok\"}");
        let mut text = String::new();
        for (name, port) in [("worker-1", base + 71), ("worker-2", base + 72)] {
            text.push_str(&self.cluster.metrics(name, port).await);
        }
        let outcome = |o: &str| sum(&text, &format!("resizer_worker_jobs_total{{outcome=\"{o}\"}}"));
        format!(
            "jobs by the processes (since their last start): {published} publishes acknowledged; workers: \
             {} succeeded, {} failed, {} dropped expired, {} dropped orphaned",
            outcome("succeeded"),
            outcome("failed"),
            outcome("expired"),
            outcome("orphaned")
        )
    }

    async fn usage(&self, samples: &[Sample], v: &mut Verdict) {
        let seen = seen(samples, self.tenants.len());
        for (t, (tenant_id, _)) in self.tenants.iter().enumerate() {
            let mut want = seen[t];
            want.sent += self.probes[t];
            let (succeeded, requests) = self.rollup_converged(tenant_id, want.ok).await;
            v.evidence.push(format!(
                "usage tenant {t}: roll-up succeeded {succeeded}, clients saw {} 200s \
                 (+{} cut off); {requests} metered of {} sent",
                want.ok, want.cut_off, want.sent
            ));
            if succeeded < want.ok || succeeded > want.ok + want.cut_off {
                v.violations.push(format!(
                    "tenant {t}: roll-up counts {succeeded} successes, clients saw {} (+{} cut off)",
                    want.ok, want.cut_off
                ));
            }
            if requests > want.sent {
                v.violations.push(format!(
                    "tenant {t}: {requests} metered but only {} sent",
                    want.sent
                ));
            }
            match self.audit_converged(tenant_id, requests).await {
                Ok((records, distinct, foreign)) => {
                    v.evidence.push(format!(
                        "audit tenant {t}: {records} records ({distinct} distinct request ids) for {requests} metered"
                    ));
                    if records != requests || distinct != records || foreign != 0 {
                        v.violations.push(format!(
                            "tenant {t}: {records} audit records, {distinct} distinct, {foreign} of \
                             another tenant, for {requests} metered requests"
                        ));
                    }
                }
                Err(e) => v.violations.push(format!("tenant {t}: audit unreadable: {e}")),
            }
        }
    }

    /// Waits until the roll-up reaches `want` successes (or `CONVERGE` passes);
    /// then a little longer, so a double count would show too.
    async fn rollup_converged(&self, tenant_id: &str, want: u64) -> (u64, u64) {
        let started = Instant::now();
        let mut last = (0, 0);
        let mut reached: Option<Instant> = None;
        while started.elapsed() < CONVERGE {
            if let Some(db) = self.cluster.usage_db().await
                && let Ok(row) = db
                    .query_one(
                        "SELECT COALESCE(SUM(succeeded), 0)::BIGINT, COALESCE(SUM(requests), 0)::BIGINT \
                         FROM usage_hourly WHERE tenant_id = $1",
                        &[&tenant_id],
                    )
                    .await
            {
                last = (row.get::<_, i64>(0) as u64, row.get::<_, i64>(1) as u64);
            }
            if last.0 >= want {
                let at = *reached.get_or_insert_with(Instant::now);
                if at.elapsed() >= Duration::from_secs(1) {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        last
    }

    /// Waits until the audit holds `want` records (the archive trails the
    /// roll-up: a batch the object store refused is archived when redelivered).
    async fn audit_converged(&self, tenant_id: &str, want: u64) -> Result<(u64, u64, u64), String> {
        let started = Instant::now();
        loop {
            let got = self.audit(tenant_id).await;
            let done = matches!(got, Ok((records, _, _)) if records >= want);
            if done || started.elapsed() >= CONVERGE {
                return got;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// (records, distinct request ids, records of another tenant), read through
    /// the admin API in windows small enough for its 10,000-record page.
    async fn audit(&self, tenant_id: &str) -> Result<(u64, u64, u64), String> {
        let now = resizer_core::time::now_unix_secs();
        let mut windows = vec![(self.began_unix - 600, now + 600)];
        let (mut records, mut foreign) = (0u64, 0u64);
        let mut ids = HashSet::new();
        while let Some((from, to)) = windows.pop() {
            let page = self
                .cluster
                .admin_get(&format!(
                    "/admin/v1/audit?tenant={tenant_id}&from={}&to={}&limit=10000",
                    resizer_core::time::rfc3339(from),
                    resizer_core::time::rfc3339(to)
                ))
                .await?;
            let list = page["records"].as_array().cloned().unwrap_or_default();
            if list.len() >= 10_000 && to - from > 1 {
                let mid = from + (to - from) / 2;
                windows.push((from, mid));
                windows.push((mid, to));
                continue;
            }
            for r in list {
                records += 1;
                if r["tenant_id"].as_str() != Some(tenant_id) {
                    foreign += 1;
                }
                ids.insert(r["request_id"].as_str().unwrap_or_default().to_string());
            }
        }
        Ok((records, ids.len() as u64, foreign))
    }
}

/// Sums the samples of one Prometheus series (exact name and labels) in `text`.
fn sum(text: &str, series: &str) -> u64 {
    text.lines()
        .filter_map(|l| l.strip_prefix(series))
        .filter_map(|rest| rest.trim().parse::<f64>().ok())
        .sum::<f64>() as u64
}
