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
