//! `resizer resize`: the worker pipeline applied to local files, like `vipsthumbnail`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use resizer_core::ImageFormat;
use resizer_core::params::{FormatChoice, ResizeParams};
use resizer_imaging::{Limits, Pipeline};

/// Arguments of `resizer resize`.
#[derive(clap::Args)]
pub struct ResizeArgs {
    /// Target width.
    #[arg(long)]
    width: Option<u32>,
    /// Target height.
    #[arg(long)]
    height: Option<u32>,
    /// contain (default), cover or fill.
    #[arg(long, default_value = "contain")]
    fit: String,
    /// auto (same as input, default; JPEG for HEIC), jpeg, png, webp or avif.
    #[arg(long, default_value = "auto")]
    format: String,
    /// Encoder quality, 1–100.
    #[arg(long)]
    quality: Option<u8>,
    /// Allow output larger than the input.
    #[arg(long)]
    enlarge: bool,
    /// Threads; default one per core.
    #[arg(long)]
    threads: Option<usize>,
    /// Output directory (created if missing).
    #[arg(short = 'o', long = "output-dir")]
    output_dir: PathBuf,
    /// Input files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// Runs the batch and returns a non-zero code if any file failed.
pub fn run(args: ResizeArgs) -> ExitCode {
    let limits = Limits::default();
    let params = match ResizeParams::parse(&query_of(&args), limits.max_output_side) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("resizer resize: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = std::fs::create_dir_all(&args.output_dir) {
        eprintln!("resizer resize: cannot create {}: {e}", args.output_dir.display());
        return ExitCode::from(2);
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, args.files.len().max(1));
    let started = Instant::now();
    let failures = resize_all(&args, &params, &limits, threads);
    let elapsed = started.elapsed().as_secs_f64();
    for f in &failures {
        eprintln!("resizer resize: {f}");
    }
    let done = args.files.len() - failures.len();
    eprintln!(
        "resized {done} of {} files in {elapsed:.3} s ({:.1} images/s, {threads} threads)",
        args.files.len(),
        done as f64 / elapsed.max(1e-9)
    );
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The flags as the query pairs `/v1/resize` would get, so both parse alike.
fn query_of(args: &ResizeArgs) -> Vec<(String, String)> {
    let mut pairs = vec![
        ("fit".to_string(), args.fit.clone()),
        ("format".to_string(), args.format.clone()),
    ];
    if let Some(w) = args.width {
        pairs.push(("width".into(), w.to_string()));
    }
    if let Some(h) = args.height {
        pairs.push(("height".into(), h.to_string()));
    }
    if let Some(q) = args.quality {
        pairs.push(("quality".into(), q.to_string()));
    }
    if args.enlarge {
        pairs.push(("enlarge".into(), "true".into()));
    }
    pairs
}

/// Resizes every file on `threads` threads, each with its own pipeline;
/// returns what failed, one line each.
fn resize_all(args: &ResizeArgs, params: &ResizeParams, limits: &Limits, threads: usize) -> Vec<String> {
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let fail = |what: String| failures.lock().unwrap_or_else(|e| e.into_inner()).push(what);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut pipeline = match Pipeline::try_new() {
                    Ok(p) => p,
                    Err(e) => return fail(format!("pipeline: {e}")),
                };
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(file) = args.files.get(i) else { break };
                    if let Err(e) = one(&mut pipeline, file, &args.output_dir, params, limits) {
                        fail(format!("{}: {e}", file.display()));
                    }
                }
            });
        }
    });
    failures.into_inner().unwrap_or_else(|e| e.into_inner())
}

fn one(
    pipeline: &mut Pipeline,
    file: &Path,
    out_dir: &Path,
    params: &ResizeParams,
    limits: &Limits,
) -> Result<(), String> {
    let data = std::fs::read(file).map_err(|e| e.to_string())?;
    let input = resizer_imaging::check(&data, limits).map_err(|e| e.to_string())?;
    let format: ImageFormat = match params.format {
        FormatChoice::Fixed(f) => f,
        FormatChoice::Auto => resizer_core::format::negotiate(
            None,
            input.format,
            input.frames > 1 && params.frames == resizer_core::params::Frames::All,
        ),
    };
    let out = pipeline
        .run(&data, params, format, limits)
        .map_err(|e| e.to_string())?;
    let stem = file
        .file_stem()
        .map_or_else(|| "image".into(), |s| s.to_string_lossy().into_owned());
    let path = out_dir.join(format!("{stem}.{}", format.extension()));
    std::fs::write(&path, &out.bytes).map_err(|e| format!("writing {}: {e}", path.display()))
}
