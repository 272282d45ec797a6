//! 12-bit JPEGs: decoded (with shrink-on-load) instead of refused, to the
//! right 8-bit values; a truncated one is still refused.

use resizer_core::ImageFormat;
use resizer_core::params::ResizeParams;
use resizer_imaging::{ImagingError, Limits, Pipeline, probe};
use turbojpeg::raw;

mod common;
use common::to_png;

/// A `w`×`h` 12-bit JPEG of a horizontal grey ramp 0..4095 (libjpeg-turbo's
/// 12-bit encoder, quality 100, 4:4:4).
fn jpeg12(w: usize, h: usize) -> Vec<u8> {
    let mut samples = Vec::with_capacity(w * h * 3);
    for _ in 0..h {
        for x in 0..w {
            let v = (x * 4095 / (w - 1)) as i16;
            samples.extend_from_slice(&[v, v, v]);
        }
    }
    // SAFETY: one compressor, checked; TurboJPEG allocates the output, freed below.
    unsafe {
        let c = raw::tj3Init(raw::TJINIT_TJINIT_COMPRESS as libc::c_int);
        assert!(!c.is_null());
        assert_eq!(
            raw::tj3Set(c, raw::TJPARAM_TJPARAM_QUALITY as libc::c_int, 100),
            0
        );
        assert_eq!(
            raw::tj3Set(
                c,
                raw::TJPARAM_TJPARAM_SUBSAMP as libc::c_int,
                raw::TJSAMP_TJSAMP_444 as libc::c_int
            ),
            0
        );
        let (mut buf, mut size): (*mut u8, raw::size_t) = (std::ptr::null_mut(), 0);
        let status = raw::tj3Compress12(
            c,
            samples.as_ptr(),
            w as i32,
            0,
            h as i32,
            raw::TJPF_TJPF_RGB,
            &mut buf,
            &mut size,
        );
        assert_eq!(status, 0);
        let out = std::slice::from_raw_parts(buf, size as usize).to_vec();
        raw::tj3Free(buf.cast());
        raw::tj3Destroy(c);
        out
    }
}

fn grey_row(input: &[u8], width: u32) -> Vec<u8> {
    let out = to_png(input, width);
    let c = usize::from(out.channels);
    out.data
        .chunks_exact(c)
        .take(out.width as usize)
        .map(|p| p[0])
        .collect()
}

#[test]
fn test_twelve_bit_jpeg_decodes_to_the_ramp() {
    let data = jpeg12(256, 32);
    assert_eq!(resizer_imaging::jpeg12::precision(&data), Some(12));
    let p = probe(&data).unwrap();
    assert_eq!((p.format, p.width, p.height), (ImageFormat::Jpeg, 256, 32));
    // Full size: sample x of the 12-bit ramp is x * 4095/255, so 8-bit x back.
    let row = grey_row(&data, 256);
    let worst = row
        .iter()
        .enumerate()
        .map(|(x, v)| v.abs_diff(x as u8))
        .max()
        .unwrap();
    assert!(worst <= 2, "worst {worst}: {row:?}");
    // A quarter: shrink-on-load at a DCT scale, then Lanczos; still the ramp.
    let row = grey_row(&data, 64);
    for (x, v) in row.iter().enumerate().skip(2).take(60) {
        assert!(v.abs_diff((x * 4 + 2) as u8) <= 4, "x {x}: {v}");
    }
}

#[test]
fn test_truncated_twelve_bit_jpeg_is_refused() {
    let data = jpeg12(64, 64);
    let mut p = Pipeline::try_new().unwrap();
    let r = p.run(
        &data[..data.len() / 2],
        &ResizeParams::width(16),
        ImageFormat::Png,
        &Limits::default(),
    );
    assert!(matches!(r, Err(ImagingError::Undecodable(_))), "{r:?}");
}
