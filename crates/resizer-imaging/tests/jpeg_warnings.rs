//! Where the line is between a JPEG libjpeg-turbo warns about and one that
//! is corrupt: stray bytes between markers (in the header, or after the
//! scan) lose no pixel, browsers show the file, and so do we — the same
//! pixels as the clean file; a file cut short, or a scan ended early, loses
//! blocks and stays refused (422). The ICC profile's place (after the frame
//! header, as Pillow's `icc-after-SOF.jpg`) does not matter.

use resizer_core::ImageFormat;
use resizer_core::params::ResizeParams;
use resizer_imaging::{ImagingError, Limits, Pipeline};

mod common;
use common::to_png;

fn jpeg() -> Vec<u8> {
    let rgb: Vec<u8> = (0..64 * 48 * 3).map(|i| ((i * 7) % 251) as u8).collect();
    let image = turbojpeg::Image {
        pixels: rgb.as_slice(),
        width: 64,
        pitch: 64 * 3,
        height: 48,
        format: turbojpeg::PixelFormat::RGB,
    };
    turbojpeg::compress(image, 90, turbojpeg::Subsamp::Sub2x2)
        .unwrap()
        .to_vec()
}

/// `extra` inserted right after the segment of `marker`.
fn after_segment(j: &[u8], marker: u8, extra: &[u8]) -> Vec<u8> {
    let mut pos = 2;
    loop {
        assert_eq!(j[pos], 0xFF, "a marker at {pos}");
        let len = usize::from(u16::from_be_bytes([j[pos + 2], j[pos + 3]]));
        if j[pos + 1] == marker {
            let at = pos + 2 + len;
            return [&j[..at], extra, &j[at..]].concat();
        }
        pos += 2 + len;
    }
}

fn icc_segment() -> Vec<u8> {
    let profile = moxcms::ColorProfile::new_srgb().encode().unwrap();
    let body = [b"ICC_PROFILE\0".as_slice(), &[1, 1], &profile].concat();
    [&[0xFF, 0xE2][..], &((body.len() + 2) as u16).to_be_bytes(), &body].concat()
}

/// The resize at half size, refused or not.
fn run(data: &[u8]) -> Result<(), ImagingError> {
    let mut p = Pipeline::try_new().unwrap();
    p.run(
        data,
        &ResizeParams::width(32),
        ImageFormat::Png,
        &Limits::default(),
    )
    .map(drop)
}

#[test]
fn test_harmless_warnings_decode_to_the_clean_files_pixels() {
    let clean = jpeg();
    let expected = to_png(&clean, 32).data;
    let eoi = clean.len() - 2;
    for (name, data) in [
        (
            "stray bytes after the frame header",
            after_segment(&clean, 0xC0, &[0, 0, 0]),
        ),
        (
            "stray bytes before EOI",
            [&clean[..eoi], &[0, 0, 0][..], &clean[eoi..]].concat(),
        ),
        (
            "ICC profile after the frame header",
            after_segment(&clean, 0xC0, &icc_segment()),
        ),
    ] {
        run(&data).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            to_png(&data, 32).data,
            expected,
            "{name}: not the clean file's pixels"
        );
    }
}

#[test]
fn test_warnings_that_lose_blocks_stay_refused() {
    let clean = jpeg();
    let sos = clean.windows(2).rposition(|w| w == [0xFF, 0xDA]).unwrap();
    let middle = sos + (clean.len() - sos) / 2;
    for (name, data) in [
        ("cut short", clean[..clean.len() * 3 / 4].to_vec()),
        ("scan ended early", [&clean[..middle], &[0xFF, 0xD9][..]].concat()),
    ] {
        let r = run(&data);
        assert!(matches!(r, Err(ImagingError::Undecodable(_))), "{name}: {r:?}");
    }
}
