//! `resizer capacity`: the article's fleet arithmetic with our own numbers.
//!
//! Measures conversions per core on the corpus (one thread, the worker
//! pipeline, fit within 320×320, JPEG q80) or takes a measured figure, then
//! derives cores, servers and the queue's message rate for a target load.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use resizer_core::ImageFormat;
use resizer_core::params::{Fit, FormatChoice, ResizeParams};
use resizer_imaging::{Limits, Pipeline};

/// Arguments of `resizer capacity`.
#[derive(clap::Args)]
pub struct CapacityArgs {
    /// Resizes per second the fleet must sustain at peak.
    #[arg(long, default_value_t = 10_000.0)]
    target_rps: f64,
    /// Share of capacity kept free at peak (0.2 = run at 80 %).
    #[arg(long, default_value_t = 0.2)]
    headroom: f64,
    /// Cores per server.
    #[arg(long, default_value_t = 32)]
    cores_per_server: u32,
    /// Use this conversions-per-core figure instead of measuring.
    #[arg(long)]
    per_core: Option<f64>,
    /// Directory of JPEGs to measure on.
    #[arg(
        long,
        env = "RESIZER_CORPUS_JPEG",
        default_value = "../shared/bench/imaging/corpus/jpeg-256k"
    )]
    corpus: PathBuf,
    /// Seconds to measure for.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
}

/// The result of the arithmetic.
#[derive(Debug, Clone, PartialEq)]
pub struct Fleet {
    /// Cores busy at the target rate.
    pub busy_cores: f64,
    /// Cores to provision with headroom.
    pub cores: u64,
    /// Servers of the given size.
    pub servers: u64,
    /// Queue messages per second: one publish and one ack per job.
    pub queue_msgs_per_sec: f64,
}

/// The article's arithmetic: cores = target / per-core rate, scaled up so the
/// fleet runs at (1 − headroom) of capacity at the target, rounded up to whole servers.
pub fn fleet(target_rps: f64, per_core: f64, headroom: f64, cores_per_server: u32) -> Fleet {
    let busy_cores = target_rps / per_core;
    let cores = (busy_cores / (1.0 - headroom)).ceil() as u64;
    let servers = cores.div_ceil(u64::from(cores_per_server.max(1)));
    Fleet {
        busy_cores,
        cores,
        servers,
        queue_msgs_per_sec: target_rps * 2.0,
    }
}

fn measure(args: &CapacityArgs) -> Result<(f64, usize), String> {
    let mut inputs = Vec::new();
    let dir =
        std::fs::read_dir(&args.corpus).map_err(|e| format!("reading {}: {e}", args.corpus.display()))?;
    for entry in dir.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "jpg" || e == "jpeg") {
            inputs.push(std::fs::read(&path).map_err(|e| e.to_string())?);
        }
    }
    if inputs.is_empty() {
        return Err(format!("no JPEGs in {}", args.corpus.display()));
    }
    let params = ResizeParams {
        width: Some(320),
        height: Some(320),
        fit: Fit::Contain,
        format: FormatChoice::Auto,
        quality: Some(80),
        enlarge: false,
        frames: resizer_core::params::Frames::All,
    };
    let limits = Limits::default();
    let mut pipeline = Pipeline::try_new().map_err(|e| e.to_string())?;
    // One warm-up pass, then count whole passes for the time given.
    for input in &inputs {
        pipeline
            .run(input, &params, ImageFormat::Jpeg, &limits)
            .map_err(|e| e.to_string())?;
    }
    let budget = Duration::from_secs_f64(args.seconds.max(0.1));
    let started = Instant::now();
    let mut done = 0usize;
    while started.elapsed() < budget {
        for input in &inputs {
            pipeline
                .run(input, &params, ImageFormat::Jpeg, &limits)
                .map_err(|e| e.to_string())?;
            done += 1;
        }
    }
    Ok((done as f64 / started.elapsed().as_secs_f64(), inputs.len()))
}

/// Runs the command.
pub fn run(args: CapacityArgs) -> ExitCode {
    if !(0.0..1.0).contains(&args.headroom) || args.target_rps <= 0.0 {
        eprintln!("resizer capacity: --headroom must be in [0, 1) and --target-rps positive");
        return ExitCode::from(2);
    }
    let per_core = match args.per_core {
        Some(v) if v > 0.0 => {
            println!("conversions per core: {v:.1}/s (given)");
            v
        }
        Some(_) => {
            eprintln!("resizer capacity: --per-core must be positive");
            return ExitCode::from(2);
        }
        None => match measure(&args) {
            Ok((v, files)) => {
                println!(
                    "conversions per core: {v:.1}/s (measured: one thread, {files} files from {}, fit 320x320, JPEG q80, {:.0} s)",
                    args.corpus.display(),
                    args.seconds
                );
                v
            }
            Err(e) => {
                eprintln!("resizer capacity: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let ours = fleet(args.target_rps, per_core, args.headroom, args.cores_per_server);
    let article = fleet(args.target_rps, 10.0, args.headroom, args.cores_per_server);
    println!(
        "target: {:.0} resizes/s, headroom {:.0} %",
        args.target_rps,
        args.headroom * 100.0
    );
    println!(
        "cores busy at target: {:.1}; cores to provision: {}; servers of {} cores: {}",
        ours.busy_cores, ours.cores, args.cores_per_server, ours.servers
    );
    println!(
        "queue: {:.0} messages/s ({:.0} publishes + {:.0} acks), descriptors only (image bytes stay on the API nodes)",
        ours.queue_msgs_per_sec, args.target_rps, args.target_rps
    );
    println!(
        "the article's 10 conversions/s/core would need {} cores, {} servers: {:.1}x ours",
        article.cores,
        article.servers,
        article.cores as f64 / ours.cores.max(1) as f64
    );
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_fleet_matches_the_article() {
        // 10,000/s at 10/s/core: 1,000 busy cores; at 80 % load 1,250 cores; 40 servers of 32.
        let f = fleet(10_000.0, 10.0, 0.2, 32);
        assert_eq!(f.busy_cores, 1000.0);
        assert_eq!((f.cores, f.servers), (1250, 40));
        assert_eq!(f.queue_msgs_per_sec, 20_000.0);
    }

    #[test]
    fn test_fleet_rounds_up() {
        let f = fleet(1000.0, 300.0, 0.0, 32);
        assert_eq!((f.cores, f.servers), (4, 1));
    }
}
