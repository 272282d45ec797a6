//! Lossless JPEG XL encode (ours: zune-jpegxl through `encode::encode`, one
//! thread) against libjxl's `cjxl -d 0` at effort 1 (the same fast-lossless
//! design) and 3, and against our own PNG encoder, on the same pixels, in the
//! same run. cjxl's speed is its own report (`--num_reps`, no file I/O, one
//! thread); ours is the median of as many runs. Sizes are of the whole file.
//!
//! `cargo run --release -p resizer-imaging --example jxl_encode -- DIR_OF_PNGS [REPS]`
//! (`bench/jxl.sh` runs it on the corpus).

use std::process::Command;
use std::time::Instant;

use resizer_core::ImageFormat;
use resizer_imaging::decode::Pixels;

fn read_png(path: &std::path::Path) -> Pixels {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut data = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut data).unwrap();
    data.truncate(info.buffer_size());
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("{other:?}"),
    };
    Pixels {
        data,
        width: info.width,
        height: info.height,
        channels,
    }
}

/// Median seconds of `reps` encodes, and the output of one.
fn ours(pixels: &Pixels, format: ImageFormat, reps: usize) -> (f64, usize) {
    let mut jpeg = turbojpeg::Compressor::new().unwrap();
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..reps {
        let copy = Pixels {
            data: pixels.data.clone(),
            ..*pixels
        };
        let started = Instant::now();
        let out = resizer_imaging::encode::encode(&mut jpeg, copy, format, None, 0).unwrap();
        times.push(started.elapsed().as_secs_f64());
        size = out.len();
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], size)
}

/// cjxl's own MP/s over `reps` and the file's size.
fn cjxl(png: &std::path::Path, effort: u8, reps: usize) -> (f64, usize) {
    let out = std::env::temp_dir().join(format!("jxl-bench-{}-{effort}.jxl", std::process::id()));
    let run = Command::new("cjxl")
        .arg(png)
        .arg(&out)
        .args(["-d", "0", "-e", &effort.to_string(), "--num_threads=0"])
        .arg(format!("--num_reps={reps}"))
        .output()
        .expect("cjxl (libjxl-tools, installed by scripts/setup.sh)");
    let text = String::from_utf8_lossy(&run.stderr).to_string() + &String::from_utf8_lossy(&run.stdout);
    let mps = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .find(|w| w[1].starts_with("MP/s"))
        .and_then(|w| w[0].parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no MP/s in cjxl's report: {text}"));
    let size = std::fs::metadata(&out).unwrap().len() as usize;
    let _ = std::fs::remove_file(out);
    (mps, size)
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: jxl_encode DIR_OF_PNGS [REPS]");
    let reps: usize = std::env::args().nth(2).map_or(5, |r| r.parse().unwrap());
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    paths.sort();
    println!(
        "image | MP | ours MP/s | cjxl -e1 MP/s | cjxl -e3 MP/s | ours KB | cjxl -e1 KB | cjxl -e3 KB | our PNG KB | our PNG MP/s"
    );
    let (mut t_ours, mut t_e1, mut t_e3, mut t_png) = (0.0, 0.0, 0.0, 0.0);
    let (mut b_ours, mut b_e1, mut b_e3, mut b_png) = (0, 0, 0, 0);
    for path in &paths {
        let pixels = read_png(path);
        let mp = f64::from(pixels.width) * f64::from(pixels.height) / 1e6;
        let (secs, size) = ours(&pixels, ImageFormat::Jxl, reps);
        let (png_secs, png_size) = ours(&pixels, ImageFormat::Png, reps);
        let (e1, e1_size) = cjxl(path, 1, reps);
        let (e3, e3_size) = cjxl(path, 3, reps);
        println!(
            "{} | {mp:.2} | {:.1} | {e1:.1} | {e3:.1} | {} | {} | {} | {} | {:.1}",
            path.file_name().unwrap().to_string_lossy(),
            mp / secs,
            size / 1000,
            e1_size / 1000,
            e3_size / 1000,
            png_size / 1000,
            mp / png_secs
        );
        t_ours += secs;
        t_png += png_secs;
        t_e1 += mp / e1;
        t_e3 += mp / e3;
        b_ours += size;
        b_e1 += e1_size;
        b_e3 += e3_size;
        b_png += png_size;
    }
    println!(
        "total time, cjxl -e1 / ours: {:.2}x; cjxl -e3 / ours: {:.2}x; our PNG / ours: {:.2}x",
        t_e1 / t_ours,
        t_e3 / t_ours,
        t_png / t_ours
    );
    println!(
        "total size, ours / cjxl -e1: {:.3}; ours / cjxl -e3: {:.3}; ours / our PNG: {:.3}",
        b_ours as f64 / b_e1 as f64,
        b_ours as f64 / b_e3 as f64,
        b_ours as f64 / b_png as f64
    );
}
