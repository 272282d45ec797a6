//! Driving load and recording what came back.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// Where requests go.
#[derive(Clone)]
pub enum Target {
    /// POST each file's bytes to this URL.
    Post(String),
    /// GET this URL with `{file}` replaced by the file's name.
    Get(String),
}

/// How requests are paced.
#[derive(Clone, Copy)]
pub enum Stage {
    /// Fixed arrival rate, requests per second.
    Open(f64),
    /// Fixed number of clients.
    Closed(usize),
}

/// A load test.
pub struct Plan {
    pub target: Target,
    pub key: Option<String>,
    pub files: Vec<(String, Bytes)>,
    pub max_in_flight: usize,
    pub timeout: Duration,
    pub duration: Duration,
    pub warmup: Duration,
}

#[derive(Default)]
struct Record {
    hist: Option<Histogram<u64>>,
    /// Latency of answers that were not 2xx: refusals must be fast.
    refused_hist: Option<Histogram<u64>>,
    statuses: BTreeMap<String, u64>,
    completed: u64,
}

type Recorder = Arc<Mutex<Record>>;

fn new_recorder() -> Recorder {
    Arc::new(Mutex::new(Record {
        hist: Some(Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")),
        refused_hist: Some(Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")),
        ..Record::default()
    }))
}

fn record(rec: &Recorder, status: String, latency: Duration) {
    let mut r = rec.lock().unwrap_or_else(|e| e.into_inner());
    let micros = latency.as_micros().max(1) as u64;
    // A request the generator could not even start has no latency to record;
    // it is counted, and its absence from the histogram is visible in the status line.
    if status == "client_overflow" {
        *r.statuses.entry(status).or_insert(0) += 1;
        return;
    }
    if let Some(h) = r.hist.as_mut() {
        h.saturating_record(micros);
    }
    if !status.starts_with('2')
        && let Some(h) = r.refused_hist.as_mut()
    {
        h.saturating_record(micros);
    }
    *r.statuses.entry(status).or_insert(0) += 1;
    r.completed += 1;
}

/// The outcome of one run.
pub struct Report {
    pub mode: &'static str,
    pub offered_rate: Option<f64>,
    pub concurrency: Option<usize>,
    pub sent: u64,
    pub elapsed: Duration,
    pub hist: Histogram<u64>,
    pub refused_hist: Histogram<u64>,
    pub statuses: BTreeMap<String, u64>,
}

impl Report {
    fn ms(&self, q: f64) -> f64 {
        if self.hist.is_empty() {
            0.0
        } else {
            self.hist.value_at_quantile(q) as f64 / 1000.0
        }
    }

    /// p99 latency of non-2xx answers in ms (0 when there were none).
    pub fn refused_p99_ms(&self) -> f64 {
        if self.refused_hist.is_empty() {
            0.0
        } else {
            self.refused_hist.value_at_quantile(0.99) as f64 / 1000.0
        }
    }

    /// p99 latency in ms.
    pub fn p99_ms(&self) -> f64 {
        self.ms(0.99)
    }

    /// 2xx answers per second.
    pub fn ok_per_sec(&self) -> f64 {
        let ok: u64 = self
            .statuses
            .iter()
            .filter(|(s, _)| s.starts_with('2'))
            .map(|(_, n)| n)
            .sum();
        ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Share of requests that did not get a 2xx.
    pub fn non_2xx_share(&self) -> f64 {
        let total: u64 = self.statuses.values().sum();
        if total == 0 {
            return 0.0;
        }
        let bad: u64 = self
            .statuses
            .iter()
            .filter(|(s, _)| !s.starts_with('2'))
            .map(|(_, n)| n)
            .sum();
        bad as f64 / total as f64
    }

    /// Prints the report as text or one JSON line.
    pub fn print(&self, json: bool) {
        let completed: u64 = self.statuses.values().sum();
        if json {
            let v = serde_json::json!({
                "mode": self.mode,
                "offered_rate": self.offered_rate,
                "concurrency": self.concurrency,
                "sent": self.sent,
                "completed": completed,
                "elapsed_s": self.elapsed.as_secs_f64(),
                "ok_per_s": self.ok_per_sec(),
                "p50_ms": self.ms(0.5),
                "p90_ms": self.ms(0.9),
                "p99_ms": self.ms(0.99),
                "p999_ms": self.ms(0.999),
                "max_ms": self.hist.max() as f64 / 1000.0,
                "refused_p99_ms": self.refused_p99_ms(),
                "statuses": self.statuses,
            });
            println!("{v}");
            return;
        }
        let how = match (self.offered_rate, self.concurrency) {
            (Some(r), _) => format!("open loop at {r:.0} req/s"),
            (_, Some(c)) => format!("closed loop with {c} clients"),
            _ => String::new(),
        };
        println!(
            "{how} for {:.1} s: sent {}, completed {completed}, {:.1} ok/s",
            self.elapsed.as_secs_f64(),
            self.sent,
            self.ok_per_sec()
        );
        println!(
            "  latency ms: p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}",
            self.ms(0.5),
            self.ms(0.9),
            self.ms(0.99),
            self.ms(0.999),
            self.hist.max() as f64 / 1000.0
        );
        let statuses: Vec<String> = self.statuses.iter().map(|(s, n)| format!("{s}: {n}")).collect();
        println!("  status  {}", statuses.join("  "));
        if !self.refused_hist.is_empty() {
            println!("  not-2xx answers: p99 {:.1} ms", self.refused_p99_ms());
        }
    }
}

impl Plan {
    fn client(&self) -> anyhow::Result<reqwest::Client> {
        Ok(reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(self.max_in_flight)
            .build()?)
    }

    fn request(&self, client: &reqwest::Client, i: u64) -> reqwest::RequestBuilder {
        let (name, bytes) = &self.files[(i as usize) % self.files.len()];
        let req = match &self.target {
            Target::Post(url) => client.post(url).body(bytes.clone()),
            Target::Get(template) => client.get(template.replace("{file}", name)),
        };
        match &self.key {
            Some(k) => req.bearer_auth(k),
            None => req,
        }
    }

    /// Runs a warm-up (not recorded), then the measured stage.
    pub async fn run(&self, stage: Stage) -> anyhow::Result<Report> {
        let client = self.client()?;
        if !self.warmup.is_zero() {
            self.drive(&client, stage, self.warmup, new_recorder(), false)
                .await;
        }
        let rec = new_recorder();
        let (sent, elapsed) = self.drive(&client, stage, self.duration, rec.clone(), true).await;
        let mut r = rec.lock().unwrap_or_else(|e| e.into_inner());
        let (mode, offered_rate, concurrency) = match stage {
            Stage::Open(rate) => ("open", Some(rate), None),
            Stage::Closed(c) => ("closed", None, Some(c)),
        };
        Ok(Report {
            mode,
            offered_rate,
            concurrency,
            sent,
            elapsed,
            hist: r.hist.take().expect("histogram present"),
            refused_hist: r.refused_hist.take().expect("histogram present"),
            statuses: std::mem::take(&mut r.statuses),
        })
    }

    /// Sends load for `duration`; returns requests started and the time until the last answer.
    async fn drive(
        &self,
        client: &reqwest::Client,
        stage: Stage,
        duration: Duration,
        rec: Recorder,
        progress: bool,
    ) -> (u64, Duration) {
        let started = Instant::now();
        let ticker = progress.then(|| progress_ticker(rec.clone(), started));
        let limit = Arc::new(Semaphore::new(self.max_in_flight));
        let sent = match stage {
            Stage::Open(rate) => {
                self.open_loop(client, rate, started + duration, &limit, &rec)
                    .await
            }
            Stage::Closed(clients) => self.closed_loop(client, clients, started + duration, &rec).await,
        };
        // Wait for the stragglers, bounded by the request timeout.
        let all = self.max_in_flight as u32;
        let _ = tokio::time::timeout(self.timeout + Duration::from_secs(1), limit.acquire_many(all)).await;
        if let Some(t) = ticker {
            t.abort();
        }
        (sent, started.elapsed())
    }

    /// Sends at `rate` per second until `end`, whatever the answers take;
    /// returns the requests scheduled.
    async fn open_loop(
        &self,
        client: &reqwest::Client,
        rate: f64,
        end: Instant,
        limit: &Arc<Semaphore>,
        rec: &Recorder,
    ) -> u64 {
        let started = Instant::now();
        let interval = Duration::from_secs_f64(1.0 / rate);
        let mut sent = 0u64;
        loop {
            // Latency counts from the schedule, not from when we got round to sending.
            let scheduled = started + interval.mul_f64(sent as f64);
            if scheduled >= end {
                return sent;
            }
            tokio::time::sleep_until(scheduled).await;
            let i = sent;
            sent += 1;
            let Ok(permit) = limit.clone().try_acquire_owned() else {
                record(rec, "client_overflow".into(), Duration::ZERO);
                continue;
            };
            let request = self.request(client, i);
            let rec = rec.clone();
            tokio::spawn(async move {
                let status = send(request).await;
                record(&rec, status, scheduled.elapsed());
                drop(permit);
            });
        }
    }

    /// `clients` clients each send the next request when the last is
    /// answered, until `end`; returns the requests sent.
    async fn closed_loop(
        &self,
        client: &reqwest::Client,
        clients: usize,
        end: Instant,
        rec: &Recorder,
    ) -> u64 {
        let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let (rec, counter) = (rec.clone(), counter.clone());
            let requests: Vec<_> = (0..self.files.len() as u64)
                .map(|i| self.request(client, i))
                .collect();
            tasks.push(tokio::spawn(async move {
                while Instant::now() < end {
                    let i = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(request) = requests[(i as usize) % requests.len()].try_clone() else {
                        break;
                    };
                    let t = Instant::now();
                    let status = send(request).await;
                    record(&rec, status, t.elapsed());
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
        counter.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Prints progress every second until aborted.
fn progress_ticker(rec: Recorder, started: Instant) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        every.tick().await;
        let mut last = 0;
        loop {
            every.tick().await;
            let r = rec.lock().unwrap_or_else(|e| e.into_inner());
            let p99 = r
                .hist
                .as_ref()
                .map_or(0.0, |h| h.value_at_quantile(0.99) as f64 / 1000.0);
            eprintln!(
                "  t={:>4.0}s  completed {:>7}  (+{:>5}/s)  p99 so far {p99:.1} ms",
                started.elapsed().as_secs_f64(),
                r.completed,
                r.completed - last
            );
            last = r.completed;
        }
    })
}

async fn send(request: reqwest::RequestBuilder) -> String {
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16().to_string();
            match response.bytes().await {
                Ok(_) => status,
                Err(_) => "body_error".into(),
            }
        }
        Err(e) if e.is_timeout() => "timeout".into(),
        Err(_) => "connect_error".into(),
    }
}
