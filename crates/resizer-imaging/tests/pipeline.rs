//! The pipeline on real corpus photographs and on broken inputs.

use std::path::PathBuf;

use resizer_core::ImageFormat;
use resizer_core::params::ResizeParams;
use resizer_imaging::{ImagingError, Limits, Pipeline};

fn corpus(rel: &str) -> Vec<u8> {
    let base = std::env::var_os("RESIZER_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/bench/imaging/corpus")
        });
    std::fs::read(base.join(rel)).unwrap()
}

fn params(w: u32) -> ResizeParams {
    ResizeParams::width(w)
}

#[test]
fn test_pipeline_recovers_after_corrupt_input() {
    let mut p = Pipeline::try_new().unwrap();
    let good = corpus("jpeg-256k/a03_ColorfulCups.jpg");
    let limits = Limits::default();
    let out = p.run(&good, &params(100), ImageFormat::Jpeg, &limits).unwrap();
    assert_eq!(out.width, 100);
    for cut in [good.len() * 6 / 10, 300, 2000] {
        let err = p
            .run(&good[..cut], &params(100), ImageFormat::Jpeg, &limits)
            .unwrap_err();
        assert!(matches!(err, ImagingError::Undecodable(_)), "{err}");
        let out = p
            .run(&good, &params(100), ImageFormat::Jpeg, &limits)
            .unwrap_or_else(|e| panic!("after a {cut}-byte input: {e}"));
        assert_eq!(out.width, 100);
    }
}

#[test]
fn test_fresh_pipeline_recovers_after_corrupt_first_input() {
    let good = corpus("jpeg-256k/a03_ColorfulCups.jpg");
    let limits = Limits::default();
    for cut in [good.len() * 6 / 10, 300, 2000] {
        let mut p = Pipeline::try_new().unwrap();
        assert!(
            p.run(&good[..cut], &params(100), ImageFormat::Jpeg, &limits)
                .is_err()
        );
        let out = p
            .run(&good, &params(100), ImageFormat::Jpeg, &limits)
            .unwrap_or_else(|e| panic!("after a {cut}-byte first input: {e}"));
        assert_eq!(out.width, 100);
    }
}

/// Found by the `pipeline_webp` fuzz target: a 174×4 WebP to width 20 with
/// fast shrink-on-load decodes at 44×1, and the crop scaled to it came out a
/// hair past the edge, which the resampler refused: an internal error (500)
/// for a valid image. Every side from 1 to 200 against a few widths.
#[test]
fn test_a_crop_scaled_to_a_shrunk_decode_stays_inside_it() {
    let fast = Limits {
        shrink_on_load: resizer_imaging::ShrinkOnLoad::Fast,
        ..Limits::default()
    };
    let mut pipeline = Pipeline::try_new().unwrap();
    for w in (1..=200u32).step_by(7).chain([174]) {
        for h in [1u32, 3, 4, 9] {
            let rgb = vec![128u8; (w * h * 3) as usize];
            let webp = webp::Encoder::from_rgb(&rgb, w, h).encode(50.0).to_vec();
            for width in [1, 5, 20, 33] {
                let out = pipeline.run(&webp, &params(width), ImageFormat::Png, &fast);
                assert!(out.is_ok(), "{w}x{h} to width {width}: {out:?}");
            }
        }
    }
}
