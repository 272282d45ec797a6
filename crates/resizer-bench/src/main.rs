//! `resizer-bench`: a load generator for image services on loopback.
//!
//! - Open loop (`--rate`): requests start on a fixed schedule whatever the
//!   server does, and latency is measured from the scheduled start, so a
//!   stalled server cannot hide its queueing (no coordinated omission).
//! - Closed loop (`--concurrency`): N clients, each sending the next request
//!   when the previous one answers.
//! - Sweep (`--sweep`): open-loop stages at rising rates until p99 passes a
//!   bound or errors appear, then `--refine` bisections between the last
//!   good rate and the first bad one; reports the tip-over point.
//!
//! Latencies go into an HDR histogram (1 µs to 60 s, 3 significant digits).
//! Every run is bounded in time and in requests in flight.

mod load;
mod sweep;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;

use crate::load::{Plan, Stage, Target};

#[derive(Parser)]
#[command(
    name = "resizer-bench",
    version,
    about = "Load generator for image-resizing services"
)]
struct Cli {
    /// URL to POST image bodies to (e.g. http://127.0.0.1:8080/v1/resize?width=320&height=320&quality=80).
    #[arg(long, conflicts_with = "get_template")]
    url: Option<String>,
    /// GET instead, from this URL with `{file}` replaced by each file's name (e.g. thumbor).
    #[arg(long)]
    get_template: Option<String>,
    /// Bearer key sent with every request.
    #[arg(long, env = "RESIZER_BENCH_KEY")]
    key: Option<String>,
    /// Open loop: requests per second.
    #[arg(long, conflicts_with = "concurrency")]
    rate: Option<f64>,
    /// Closed loop: concurrent clients.
    #[arg(long)]
    concurrency: Option<usize>,
    /// Sweep open-loop rates from --start by --step up to --max.
    #[arg(long, conflicts_with_all = ["rate", "concurrency"])]
    sweep: bool,
    /// First sweep rate.
    #[arg(long, default_value_t = 50.0)]
    start: f64,
    /// Sweep increment.
    #[arg(long, default_value_t = 50.0)]
    step: f64,
    /// Highest sweep rate.
    #[arg(long, default_value_t = 5000.0)]
    max: f64,
    /// p99 bound of the sweep, milliseconds.
    #[arg(long, default_value_t = 500.0)]
    p99_bound_ms: f64,
    /// Bisections between the last good and the first failing sweep rate (each
    /// halves the uncertainty: 3 turn a step of 50 into 6.25).
    #[arg(long, default_value_t = 3)]
    refine: u32,
    /// Share of non-2xx answers that ends the sweep.
    #[arg(long, default_value_t = 0.01)]
    max_error_rate: f64,
    /// Seconds per run (per stage when sweeping).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of warm-up before measuring (not recorded).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Most requests in flight; an open-loop start beyond it is counted as `client_overflow`.
    #[arg(long, default_value_t = 4096)]
    max_in_flight: usize,
    /// Per-request timeout, seconds.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// Print one JSON object per result line instead of text.
    #[arg(long)]
    json: bool,
    /// Image files, or directories of them, sent in turn.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

fn read_files(paths: &[PathBuf]) -> anyhow::Result<Vec<(String, Bytes)>> {
    let mut out = Vec::new();
    for path in paths {
        let mut entries = Vec::new();
        if path.is_dir() {
            for e in std::fs::read_dir(path).with_context(|| format!("reading {}", path.display()))? {
                let p = e?.path();
                if p.is_file() {
                    entries.push(p);
                }
            }
            entries.sort();
        } else {
            entries.push(path.clone());
        }
        for p in entries {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let bytes = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
            out.push((name, Bytes::from(bytes)));
        }
    }
    if out.is_empty() {
        bail!("no input files");
    }
    Ok(out)
}

// Longer than 60 lines on purpose: the run's script, flag by flag, read top to bottom.
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let target = match (&cli.url, &cli.get_template) {
        (Some(url), None) => Target::Post(url.clone()),
        (None, Some(t)) => Target::Get(t.clone()),
        _ => bail!("give --url (POST) or --get-template (GET)"),
    };
    let plan = Plan {
        target,
        key: cli.key.clone(),
        files: read_files(&cli.files)?,
        max_in_flight: cli.max_in_flight,
        timeout: Duration::from_secs_f64(cli.timeout),
        duration: Duration::from_secs_f64(cli.duration),
        warmup: Duration::from_secs_f64(cli.warmup),
    };
    if cli.sweep {
        let mut sweep = sweep::Sweep::new(cli.start, cli.step, cli.max, cli.refine);
        let mut good: Option<load::Report> = None;
        while let Some(rate) = sweep.next_rate() {
            let report = plan.run(Stage::Open(rate)).await?;
            report.print(cli.json);
            let bad_share = report.non_2xx_share();
            let verdict = if report.p99_ms() > cli.p99_bound_ms {
                Some(format!(
                    "p99 {:.1} ms > {:.0} ms",
                    report.p99_ms(),
                    cli.p99_bound_ms
                ))
            } else if bad_share > cli.max_error_rate {
                Some(format!(
                    "{:.2} % non-2xx > {:.2} %",
                    bad_share * 100.0,
                    cli.max_error_rate * 100.0
                ))
            } else {
                None
            };
            match &verdict {
                None => good = Some(report),
                Some(reason) => println!("failed at {rate:.0} req/s: {reason}"),
            }
            sweep.record(rate, verdict.is_none());
        }
        match (sweep.outcome(), &good) {
            (sweep::Outcome::NeverGood | sweep::Outcome::Running, _) | (_, None) => {
                println!("tip-over: already at the first rate {:.0} req/s", cli.start)
            }
            (sweep::Outcome::ReachedMax, Some(g)) => println!(
                "sweep reached --max {:.0} req/s without tipping over (last: {:.1} ok/s, p99 {:.1} ms)",
                cli.max,
                g.ok_per_sec(),
                g.p99_ms()
            ),
            (sweep::Outcome::TippedOver { good, bad }, Some(g)) => println!(
                "tip-over: sustained {good:.0} req/s offered ({:.1} ok/s, p99 {:.1} ms); failed at {bad:.0} req/s",
                g.ok_per_sec(),
                g.p99_ms()
            ),
        }
    } else {
        let stage = match (cli.rate, cli.concurrency) {
            (Some(r), None) if r > 0.0 => Stage::Open(r),
            (None, Some(c)) if c > 0 => Stage::Closed(c),
            _ => bail!("give --rate R, --concurrency C or --sweep"),
        };
        plan.run(stage).await?.print(cli.json);
    }
    Ok(())
}
