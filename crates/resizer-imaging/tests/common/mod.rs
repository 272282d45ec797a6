//! Helpers of the format tests: a resize to PNG and an independent PNG decode.

use resizer_core::ImageFormat;
use resizer_core::params::ResizeParams;
use resizer_imaging::decode::Pixels;
use resizer_imaging::{Limits, Pipeline};

/// Decodes a PNG with the `png` crate: the reference side of every comparison.
pub fn png_pixels(data: &[u8]) -> Pixels {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(data));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("{other:?}"),
    };
    Pixels {
        data: buf,
        width: info.width,
        height: info.height,
        channels,
    }
}

/// Resizes `input` to PNG at `width` with the default limits, and decodes it.
pub fn to_png(input: &[u8], width: u32) -> Pixels {
    let mut p = Pipeline::try_new().unwrap();
    let out = p
        .run(
            input,
            &ResizeParams::width(width),
            ImageFormat::Png,
            &Limits::default(),
        )
        .unwrap();
    assert_eq!(out.format, ImageFormat::Png);
    png_pixels(&out.bytes)
}
