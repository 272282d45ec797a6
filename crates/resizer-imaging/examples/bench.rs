//! In-process imaging benchmark with the same interface and output as the
//! peer harnesses in `shared/bench/imaging/harness/` (so `bench/imaging.sh`
//! can put them side by side): reads the inputs into memory, one untimed
//! warm-up pass, then times every conversion and prints one JSON object with
//! wall and process-CPU milliseconds per conversion and the output sizes.
//!
//! `cargo run --release -p resizer-imaging --example bench -- fit320|half PASSES FILE...`
//! (`OUTDIR=dir` writes the last pass's outputs as `<stem>.jpg`; `SHRINK_ON_LOAD=fast`
//! runs the `worker.shrink_on_load = "fast"` setting; `FORMAT=avif QUALITY=q
//! AVIF_SPEED=s` encodes AVIF instead, written as `<stem>.avif`; `FORMAT=gif|webp|png` likewise,
//! and an animated input stays animated in GIF and WebP: `bench/animation.sh`).

use std::time::Instant;

use resizer_core::format::ImageFormat;
use resizer_core::params::{Fit, FormatChoice, ResizeParams};
use resizer_imaging::{Limits, Pipeline, ShrinkOnLoad, check};

/// CPU time of the whole process (all threads), like Python's `process_time`.
fn cpu_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}

/// Peak resident memory of the process so far (inputs held in memory included).
fn max_rss_kib() -> i64 {
    // SAFETY: getrusage writes into the rusage we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_maxrss
}

/// The harnesses' target rule: fit within 320×320 (never enlarging), or half of each side.
fn params(task: &str, data: &[u8], limits: &Limits) -> ResizeParams {
    let (w, h) = check(data, limits).expect("a supported image").oriented_size();
    let (tw, th) = match task {
        "fit320" => {
            let s = (320.0 / f64::from(w)).min(320.0 / f64::from(h)).min(1.0);
            (
                (f64::from(w) * s).round() as u32,
                (f64::from(h) * s).round() as u32,
            )
        }
        "half" => (
            (f64::from(w) / 2.0).round() as u32,
            (f64::from(h) / 2.0).round() as u32,
        ),
        other => panic!("unknown task {other} (fit320 or half)"),
    };
    ResizeParams {
        width: Some(tw.max(1)),
        height: Some(th.max(1)),
        fit: Fit::Fill,
        format: FormatChoice::Fixed(output_format()),
        quality: Some(std::env::var("QUALITY").map_or(80, |q| q.parse().expect("QUALITY"))),
        enlarge: false,
        frames: resizer_core::params::Frames::All,
    }
}

fn output_format() -> ImageFormat {
    match std::env::var("FORMAT").as_deref() {
        Ok(name) => ImageFormat::parse(name).unwrap_or_else(|| panic!("FORMAT={name}")),
        Err(_) => ImageFormat::Jpeg,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: bench fit320|half PASSES FILE...");
        std::process::exit(2);
    }
    let (task, passes) = (&args[0], args[1].parse::<usize>().expect("PASSES"));
    let files = &args[2..];
    let limits = Limits {
        shrink_on_load: match std::env::var("SHRINK_ON_LOAD").as_deref() {
            Ok("fast") => ShrinkOnLoad::Fast,
            _ => ShrinkOnLoad::Quality,
        },
        ..Limits::default()
    };
    let inputs: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).expect("readable"))
        .collect();
    let jobs: Vec<ResizeParams> = inputs.iter().map(|d| params(task, d, &limits)).collect();
    let mut pipeline = Pipeline::try_new().expect("codecs");
    if let Ok(speed) = std::env::var("AVIF_SPEED") {
        pipeline.set_avif_speed(speed.parse().expect("AVIF_SPEED"));
    }
    let format = output_format();
    let mut convert = |i: usize| {
        pipeline
            .run(&inputs[i], &jobs[i], format, &limits)
            .expect("resized")
            .bytes
    };
    for i in 0..inputs.len() {
        convert(i);
    }
    let (mut times, mut cpus) = (Vec::new(), Vec::new());
    let mut last = vec![Vec::new(); inputs.len()];
    let (t0, c0) = (Instant::now(), cpu_ms());
    for _ in 0..passes {
        for (i, slot) in last.iter_mut().enumerate() {
            let (t, c) = (Instant::now(), cpu_ms());
            *slot = convert(i);
            times.push(t.elapsed().as_secs_f64() * 1e3);
            cpus.push(cpu_ms() - c);
        }
    }
    let (total, cpu_total) = (t0.elapsed().as_secs_f64(), (cpu_ms() - c0) / 1e3);
    if let Ok(dir) = std::env::var("OUTDIR") {
        std::fs::create_dir_all(&dir).expect("OUTDIR");
        for (f, out) in files.iter().zip(&last) {
            let stem = std::path::Path::new(f).file_stem().unwrap().to_string_lossy();
            let ext = format.extension();
            std::fs::write(format!("{dir}/{stem}.{ext}"), out).expect("writable OUTDIR");
        }
    }
    let round = |v: &[f64]| {
        v.iter()
            .map(|x| (x * 1000.0).round() / 1000.0)
            .collect::<Vec<_>>()
    };
    println!(
        "{}",
        serde_json::json!({
            "n": times.len(),
            "total_s": total,
            "cpu_s": cpu_total,
            "times_ms": round(&times),
            "cpu_ms": round(&cpus),
            "out_bytes": last.iter().map(Vec::len).collect::<Vec<_>>(),
            "max_rss_kib": max_rss_kib(),
        })
    );
}
