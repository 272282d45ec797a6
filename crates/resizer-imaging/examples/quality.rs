//! The imaging benchmark's quality guard: scores JPEG or AVIF outputs (ours and the
//! peers', as written by the harnesses' `OUTDIR`) against a reference made
//! from the same input by a full decode and Lanczos3 in floating point, never
//! re-encoded. Score: SSIM on luma (Gaussian window 11, σ 1.5), the usual
//! definition (Wang et al. 2004). Prints one JSON object per output directory.
//!
//! `cargo run --release -p resizer-imaging --example quality -- fit320|half DIR[,DIR...] FILE...`
//! (`EXT=avif` reads `<stem>.avif` outputs instead of `<stem>.jpg`).

use resizer_imaging::quality::{decode_rgb, luma, reference_luma, ssim};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: quality fit320|half DIR[,DIR...] FILE...");
        std::process::exit(2);
    }
    let task = &args[0];
    let dirs: Vec<&str> = args[1].split(',').collect();
    let files = &args[2..];
    let references: Vec<_> = files
        .iter()
        .map(|f| reference_luma(&std::fs::read(f).expect("input"), task))
        .collect();
    for dir in dirs {
        let (mut scores, mut bytes) = (Vec::new(), 0usize);
        for (f, (reference, w, h)) in files.iter().zip(&references) {
            let stem = std::path::Path::new(f).file_stem().unwrap().to_string_lossy();
            let ext = std::env::var("EXT").unwrap_or_else(|_| "jpg".into());
            let out = std::fs::read(format!("{dir}/{stem}.{ext}")).expect("an output per input");
            bytes += out.len();
            let (rgb, ow, oh) = decode_rgb(&out);
            assert_eq!((ow, oh), (*w, *h), "{dir}/{stem}.jpg has the wrong size");
            let y = luma(
                rgb.chunks_exact(3)
                    .map(|p| [f32::from(p[0]), f32::from(p[1]), f32::from(p[2])]),
            );
            scores.push(ssim(reference, &y, *w, *h));
        }
        let per_image: serde_json::Map<String, serde_json::Value> = files
            .iter()
            .zip(&scores)
            .map(|(f, s)| {
                let stem = std::path::Path::new(f)
                    .file_stem()
                    .unwrap()
                    .to_string_lossy()
                    .to_string();
                (stem, serde_json::json!(s))
            })
            .collect();
        let mean = scores.iter().sum::<f64>() / scores.len() as f64;
        let min = scores.iter().cloned().fold(f64::INFINITY, f64::min);
        println!(
            "{}",
            serde_json::json!({ "dir": dir, "n": scores.len(), "ssim_mean": mean, "ssim_min": min, "bytes": bytes, "ssim": per_image })
        );
    }
}
