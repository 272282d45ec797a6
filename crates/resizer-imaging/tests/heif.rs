//! AVIF and HEIC inputs made by independent encoders (`fixtures/heif/make.sh`:
//! Debian's heif-enc with x265 and avifenc with libaom; HEVC grids assembled
//! from heif-enc tiles by `make_heic_grid.py`), decoded by the
//! pipeline and compared with the PNG each was made from; and hostile
//! HEIF files: truncated, lying, bombs.

use std::path::PathBuf;

use resizer_core::ImageFormat;
use resizer_core::params::ResizeParams;
use resizer_imaging::decode::Pixels;
use resizer_imaging::{ImagingError, Limits, Pipeline, probe};

mod common;
use common::{png_pixels, to_png};

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/heif")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Mean absolute difference per sample, and the worst pixel's.
fn diff(a: &Pixels, b: &Pixels) -> (f64, u8) {
    assert_eq!((a.width, a.height, a.channels), (b.width, b.height, b.channels));
    let total: u64 = a
        .data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    let worst = a
        .data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap();
    (total as f64 / a.data.len() as f64, worst)
}

/// Turns the source a quarter anticlockwise (what `irot = 1` displays).
fn rotate_anticlockwise(src: &Pixels) -> Pixels {
    let (w, h, c) = (src.width as usize, src.height as usize, usize::from(src.channels));
    let mut data = Vec::with_capacity(src.data.len());
    for y in 0..w {
        for x in 0..h {
            let (sx, sy) = (w - 1 - y, x);
            data.extend_from_slice(&src.data[(sy * w + sx) * c..][..c]);
        }
    }
    Pixels {
        data,
        width: h as u32,
        height: w as u32,
        channels: src.channels,
    }
}

#[test]
fn test_heif_inputs_decode_to_their_sources() {
    let src = png_pixels(&fixture("src.png"));
    for (name, format) in [
        ("photo.heic", ImageFormat::Heic),
        ("photo.avif", ImageFormat::Avif),
        ("deep12.avif", ImageFormat::Avif),
        ("grid.avif", ImageFormat::Avif),
        ("grid.heic", ImageFormat::Heic),
    ] {
        let data = fixture(name);
        let p = probe(&data).unwrap();
        assert_eq!(
            (p.format, p.width, p.height, p.orientation),
            (format, 320, 240, 1),
            "{name}"
        );
        let (mean, worst) = diff(&to_png(&data, 320), &src);
        assert!(mean < 4.0 && worst < 96, "{name}: mean {mean:.2}, worst {worst}");
    }
}

#[test]
fn test_avif_rotation_is_applied_once() {
    let data = fixture("rot90.avif");
    let p = probe(&data).unwrap();
    assert_eq!(
        (p.width, p.height),
        (240, 320),
        "the probe reports the displayed size"
    );
    let expected = rotate_anticlockwise(&png_pixels(&fixture("src.png")));
    let (mean, _) = diff(&to_png(&data, 240), &expected);
    assert!(
        mean < 4.0,
        "mean {mean:.2}: rotated the wrong way, twice or not at all"
    );
}

#[test]
fn test_heic_grid_with_phone_rotation_is_upright() {
    let data = fixture("grid-rot.heic");
    let p = probe(&data).unwrap();
    assert_eq!((p.format, p.width, p.height), (ImageFormat::Heic, 240, 320));
    // irot 3: three quarter turns anticlockwise, one clockwise.
    let src = png_pixels(&fixture("src.png"));
    let expected = rotate_anticlockwise(&rotate_anticlockwise(&rotate_anticlockwise(&src)));
    let (mean, worst) = diff(&to_png(&data, 240), &expected);
    assert!(mean < 4.0 && worst < 96, "mean {mean:.2}, worst {worst}");
}

#[test]
fn test_ten_bit_444_avif_keeps_alpha() {
    let src = png_pixels(&fixture("src-alpha.png"));
    let out = to_png(&fixture("alpha10.avif"), 128);
    let (mean, worst) = diff(&out, &src);
    assert!(mean < 3.0 && worst < 48, "mean {mean:.2}, worst {worst}");
}

#[test]
fn test_avif_output_round_trips_and_keeps_alpha() {
    let mut p = Pipeline::try_new().unwrap();
    for (name, channels) in [("src.png", 3), ("src-alpha.png", 4)] {
        let src = fixture(name);
        let params = ResizeParams {
            quality: Some(90),
            ..ResizeParams::width(64)
        };
        let out = p
            .run(&src, &params, ImageFormat::Avif, &Limits::default())
            .unwrap();
        let back = probe(&out.bytes).unwrap();
        assert_eq!((back.format, back.width), (ImageFormat::Avif, 64), "{name}");
        let decoded = to_png(&out.bytes, 64);
        assert_eq!(decoded.channels, channels, "{name}");
        let reference = to_png(&src, 64);
        let (mean, _) = diff(&decoded, &reference);
        assert!(mean < 6.0, "{name}: mean {mean:.2}");
    }
}

#[test]
fn test_hostile_heif_inputs_are_refused_in_bounded_time() {
    let mut p = Pipeline::try_new().unwrap();
    let limits = Limits {
        max_input_pixels: 1 << 20,
        ..Limits::default()
    };
    let good = fixture("grid.avif");
    let started = std::time::Instant::now();
    for cut in [16, 64, 200, good.len() / 3, good.len() - 10] {
        let r = p.run(&good[..cut], &ResizeParams::width(50), ImageFormat::Jpeg, &limits);
        assert!(
            matches!(
                r,
                Err(ImagingError::Undecodable(_) | ImagingError::UnsupportedFormat(_))
            ),
            "{cut} bytes: {r:?}"
        );
    }
    // Flipping every byte of the header one at a time: an answer each time, no panic.
    for i in 0..good.len().min(600) {
        let mut bad = good.clone();
        bad[i] ^= 0xA5;
        let _ = p.run(&bad, &ResizeParams::width(50), ImageFormat::Jpeg, &limits);
    }
    assert!(started.elapsed().as_secs() < 60, "{:?}", started.elapsed());
    let out = p
        .run(&good, &ResizeParams::width(50), ImageFormat::Jpeg, &limits)
        .unwrap();
    assert_eq!(out.width, 50, "the pipeline still works after the hostile inputs");
}

/// A grid whose `ispe` claims 60000×60000 is refused by the probe before
/// libheif sees it; one that lies small about its tiles is refused by
/// libheif's own limit, not decoded into a larger buffer.
#[test]
fn test_heif_pixel_bombs_are_refused_before_decoding() {
    let mut good = fixture("grid.avif");
    let at = good.windows(4).position(|w| w == b"ispe").expect("an ispe box");
    // The first ispe is the grid's or a tile's; both must be checked.
    good[at + 8..at + 12].copy_from_slice(&60000u32.to_be_bytes());
    good[at + 12..at + 16].copy_from_slice(&60000u32.to_be_bytes());
    let mut p = Pipeline::try_new().unwrap();
    let r = p.run(
        &good,
        &ResizeParams::width(50),
        ImageFormat::Jpeg,
        &Limits::default(),
    );
    assert!(
        matches!(
            r,
            Err(ImagingError::TooManyPixels { .. } | ImagingError::Undecodable(_))
        ),
        "{r:?}"
    );
}

/// A grid whose tiles are the grid itself (a reference cycle), and one whose
/// tiles are missing: refused, in bounded time, never a stack overflow.
#[test]
fn test_heic_grid_referencing_itself_is_refused() {
    let good = fixture("grid.heic");
    let at = good
        .windows(4)
        .position(|w| w == b"dimg")
        .expect("a dimg reference")
        + 4;
    let mut cycle = good.clone();
    for k in 0..4 {
        cycle[at + 4 + 2 * k..at + 6 + 2 * k].copy_from_slice(&1u16.to_be_bytes());
    }
    let mut missing = good;
    for k in 0..4 {
        missing[at + 4 + 2 * k..at + 6 + 2 * k].copy_from_slice(&(900 + k as u16).to_be_bytes());
    }
    let mut p = Pipeline::try_new().unwrap();
    for (name, bad) in [("cycle", cycle), ("missing", missing)] {
        let started = std::time::Instant::now();
        let r = p.run(
            &bad,
            &ResizeParams::width(50),
            ImageFormat::Jpeg,
            &Limits::default(),
        );
        assert!(matches!(r, Err(ImagingError::Undecodable(_))), "{name}: {r:?}");
        assert!(started.elapsed().as_secs() < 5, "{name}: {:?}", started.elapsed());
    }
}

/// An AVIF whose `ispe` claims less than its coded picture. libheif checks
/// this itself for most files, not for all: `ispe-lies-small.avif` (found by
/// the fuzzer: a 128×96 colour image with alpha whose shared `ispe` says
/// 128×59) decodes to 128×96. The limits were checked against the claim, so
/// the pipeline refuses the larger decode rather than resize it.
#[test]
fn test_avif_decoding_larger_than_its_header_is_refused() {
    let lying = fixture("ispe-lies-small.avif");
    let claim = probe(&lying).unwrap();
    assert_eq!((claim.width, claim.height), (128, 59));
    let mut p = Pipeline::try_new().unwrap();
    let r = p.run(
        &lying,
        &ResizeParams::width(64),
        ImageFormat::Jpeg,
        &Limits::default(),
    );
    assert!(
        matches!(&r, Err(ImagingError::Undecodable(m)) if m.contains("128x96, larger than")),
        "{r:?}"
    );
}
