//! What a fresh libjpeg-turbo decoder per JPEG costs (the pipeline makes one
//! per job so no tables carry over between jobs): median of 5 rounds of
//! 10,000 creations, printed beside one fit-320 decode+resize for scale.
//!
//! `cargo run --release -p resizer-imaging --example decoder_cost`

use std::time::Instant;

use resizer_core::ImageFormat;
use resizer_core::params::ResizeParams;
use resizer_imaging::{Limits, Pipeline};

fn main() {
    let mut rounds: Vec<f64> = (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..10_000 {
                std::hint::black_box(turbojpeg::Decompressor::new().expect("decompressor"));
            }
            start.elapsed().as_secs_f64() * 1e6 / 10_000.0
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    let photo = resizer_testing::read_corpus("jpeg-256k/a03_ColorfulCups.jpg");
    let mut pipeline = Pipeline::try_new().expect("codecs");
    let mut resizes: Vec<f64> = (0..20)
        .map(|_| {
            let start = Instant::now();
            let out = pipeline.run(
                &photo,
                &ResizeParams::width(320),
                ImageFormat::Jpeg,
                &Limits::default(),
            );
            std::hint::black_box(out.expect("resizes"));
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    resizes.sort_by(f64::total_cmp);
    println!(
        "fresh decoder: {:.2} µs (median of 5 x 10,000); one fit-320 resize of a 256 KB photo: {:.0} µs (median of 20); ratio {:.6}",
        rounds[2],
        resizes[10],
        rounds[2] / resizes[10]
    );
}
