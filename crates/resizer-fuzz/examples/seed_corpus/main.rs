//! Writes the seed inputs of every fuzz target: small images made from the
//! shared photo corpus and from code (every JPEG, PNG and WebP flavour the
//! pipeline handles), real camera headers, and the text and JSON each
//! parser reads in production. `scripts/fuzz.sh seed` runs it, then
//! minimizes the union with what the fuzzers have found.
//!
//! `cargo run -p resizer-fuzz --example seed_corpus -- DIR` → `DIR/<target>/seed-*`.

use std::path::{Path, PathBuf};

use resizer_core::ImageFormat;
use resizer_core::params::ResizeParams;
use resizer_imaging::{Limits, Pipeline};
use resizer_testing::corpus;

fn main() {
    let out = PathBuf::from(std::env::args().nth(1).expect("usage: seed_corpus DIR"));
    let images = images();
    for (name, bytes) in &images {
        write(&out, "probe", name, bytes);
        let target = match resizer_imaging::probe::sniff(bytes) {
            Some(ImageFormat::Jpeg) => "pipeline_jpeg",
            Some(ImageFormat::Png) => "pipeline_png",
            Some(ImageFormat::Webp) => "pipeline_webp",
            Some(ImageFormat::Avif | ImageFormat::Heic) => "pipeline_heif",
            Some(ImageFormat::Gif) => "pipeline_gif",
            Some(ImageFormat::Jxl) | None => continue,
        };
        // Two request bytes (see resizer_fuzz::images): width 48, and a cover box to WebP.
        for (i, head) in [[47u8, 0], [95, 0b0001_1101]].iter().enumerate() {
            write(
                &out,
                target,
                &format!("{name}-{i}"),
                &[head.as_slice(), bytes].concat(),
            );
        }
    }
    for (name, bytes) in camera_headers() {
        write(&out, "probe", &name, &bytes);
    }
    for (target, name, bytes) in texts() {
        write(&out, target, &name, &bytes);
    }
    eprintln!("seeds written under {}", out.display());
}

fn write(out: &Path, target: &str, name: &str, bytes: &[u8]) {
    let dir = out.join(target);
    std::fs::create_dir_all(&dir).expect("create the seed directory");
    std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("write a seed");
}

/// Small images: corpus photos shrunk by the pipeline itself, and made ones.
fn images() -> Vec<(String, Vec<u8>)> {
    let mut pipeline = Pipeline::try_new().expect("codecs");
    let mut images = Vec::new();
    let photos = [
        "jpeg-256k/a03_ColorfulCups.jpg",
        "jpeg-256k/a06_Grey.jpg",
        "png/c03_LadyBird.png",
        "webp/d02_Dune.webp",
    ];
    for rel in photos {
        let data = std::fs::read(corpus(rel)).expect("the shared corpus");
        for format in ImageFormat::WRITTEN {
            let out = pipeline
                .run(&data, &ResizeParams::width(40), format, &Limits::default())
                .expect("a corpus photo resizes");
            let stem = Path::new(rel).file_stem().unwrap().to_string_lossy().to_string();
            images.push((format!("{stem}.{}", format.extension()), out.bytes));
        }
    }
    images.extend(made::jpegs());
    images.extend(made::pngs());
    images.extend(made::webps());
    images.extend(made::heifs());
    images.extend(made::gifs());
    // The animation again, as the pipeline writes it: an animated WebP and GIF.
    let animated = images
        .iter()
        .find(|(name, _)| name == "g-animated.gif")
        .expect("made")
        .1
        .clone();
    for format in [ImageFormat::Webp, ImageFormat::Gif] {
        let out = pipeline
            .run(&animated, &ResizeParams::width(20), format, &Limits::default())
            .expect("the animation resizes");
        images.push((format!("animated-out.{}", format.extension()), out.bytes));
    }
    images
}

/// The first 4 KiB of real files: EXIF, ICC profiles and the frame header,
/// as cameras and editors write them.
fn camera_headers() -> Vec<(String, Vec<u8>)> {
    [
        "jpeg-1m/b01_EveningGlow.jpg",
        "jpeg-256k/a10_summer_1am.jpg",
        "webp/d01_Grey.webp",
    ]
    .iter()
    .map(|rel| {
        let data = std::fs::read(corpus(rel)).expect("the shared corpus");
        let name = Path::new(rel).file_name().unwrap().to_string_lossy().to_string();
        (format!("head-{name}"), data[..data.len().min(4096)].to_vec())
    })
    .collect()
}

mod made;
mod texts;
use texts::texts;
