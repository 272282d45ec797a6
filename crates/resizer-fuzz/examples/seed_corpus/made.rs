//! Images made from code: the flavours the photo corpus does not have.

use turbojpeg::{Compressor, Image, PixelFormat, Subsamp};

fn gradient(w: usize, h: usize, channels: usize) -> Vec<u8> {
    let mut px = Vec::with_capacity(w * h * channels);
    for y in 0..h {
        for x in 0..w {
            for c in 0..channels {
                px.push(((x * 7 + y * 3 + c * 60) % 256) as u8);
            }
        }
    }
    px
}

fn jpeg(w: usize, h: usize, format: PixelFormat, setup: impl FnOnce(&mut Compressor)) -> Vec<u8> {
    let pixels = gradient(w, h, format.size());
    let mut c = Compressor::new().expect("compressor");
    c.set_quality(70).expect("quality");
    setup(&mut c);
    let image = Image {
        pixels: pixels.as_slice(),
        width: w,
        pitch: w * format.size(),
        height: h,
        format,
    };
    c.compress_to_vec(image).expect("compress")
}

/// Inserts an EXIF APP1 segment with `orientation` after SOI.
fn with_orientation(jpeg: &[u8], orientation: u8) -> Vec<u8> {
    let tiff = resizer_imaging::exif::tiff_with_orientation(orientation);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((2 + 6 + tiff.len()) as u16).to_be_bytes());
    out.extend_from_slice(b"Exif\0\0");
    out.extend_from_slice(&tiff);
    out.extend_from_slice(&jpeg[2..]);
    out
}

pub fn jpegs() -> Vec<(String, Vec<u8>)> {
    let base = jpeg(33, 21, PixelFormat::RGB, |_| {});
    vec![
        ("j-420.jpg".into(), base.clone()),
        (
            "j-444.jpg".into(),
            jpeg(17, 9, PixelFormat::RGB, |c| c.set_subsamp(Subsamp::None).unwrap()),
        ),
        (
            "j-gray.jpg".into(),
            jpeg(20, 20, PixelFormat::GRAY, |c| {
                c.set_subsamp(Subsamp::Gray).unwrap()
            }),
        ),
        ("j-cmyk.jpg".into(), jpeg(16, 16, PixelFormat::CMYK, |_| {})),
        ("j-orient6.jpg".into(), with_orientation(&base, 6)),
        ("j-orient3.jpg".into(), with_orientation(&base, 3)),
    ]
}

fn png(w: u32, h: u32, color: png::ColorType, depth: png::BitDepth, palette: Option<Vec<u8>>) -> Vec<u8> {
    let samples = color.samples() * if depth == png::BitDepth::Sixteen { 2 } else { 1 };
    let data = gradient(w as usize, h as usize, samples);
    let data = if depth == png::BitDepth::Eight || depth == png::BitDepth::Sixteen {
        data
    } else {
        // Sub-byte depths pack several pixels per byte: rows of ceil(w * bits / 8) bytes.
        vec![0x5A; (w as usize * depth as usize).div_ceil(8) * h as usize]
    };
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(color);
    enc.set_depth(depth);
    if let Some(p) = palette {
        enc.set_palette(p);
    }
    let mut writer = enc.write_header().expect("header");
    writer.write_image_data(&data).expect("data");
    writer.finish().expect("finish");
    out
}

pub fn pngs() -> Vec<(String, Vec<u8>)> {
    use png::{BitDepth as D, ColorType as C};
    let palette: Vec<u8> = (0..=255u8).flat_map(|i| [i, 255 - i, i / 2]).collect();
    vec![
        ("p-rgba.png".into(), png(19, 11, C::Rgba, D::Eight, None)),
        ("p-rgb16.png".into(), png(9, 7, C::Rgb, D::Sixteen, None)),
        (
            "p-gray-alpha.png".into(),
            png(12, 12, C::GrayscaleAlpha, D::Eight, None),
        ),
        ("p-gray2.png".into(), png(13, 5, C::Grayscale, D::Two, None)),
        (
            "p-palette.png".into(),
            png(16, 16, C::Indexed, D::Eight, Some(palette)),
        ),
    ]
}

pub fn webps() -> Vec<(String, Vec<u8>)> {
    let rgba = gradient(24, 16, 4);
    let rgb = gradient(24, 16, 3);
    let lossy = webp::Encoder::from_rgb(&rgb, 24, 16).encode(60.0);
    let alpha = webp::Encoder::from_rgba(&rgba, 24, 16).encode(60.0);
    let lossless = webp::Encoder::from_rgba(&rgba, 24, 16).encode_lossless();
    vec![
        ("w-lossy.webp".into(), lossy.to_vec()),
        ("w-alpha.webp".into(), alpha.to_vec()),
        ("w-lossless.webp".into(), lossless.to_vec()),
    ]
}

/// The HEIF test fixtures (independent encoders; see resizer-imaging's tests).
pub fn heifs() -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../resizer-imaging/tests/fixtures/heif");
    [
        "photo.heic",
        "grid-rot.heic",
        "alpha10.avif",
        "grid.avif",
        "rot90.avif",
    ]
    .iter()
    .map(|name| {
        let bytes = std::fs::read(dir.join(name)).expect("a HEIF fixture");
        (format!("h-{name}"), bytes)
    })
    .collect()
}

/// GIFs: a still with transparency, an interlaced one, and a 3-frame
/// animation whose later frames are offset and smaller than the screen.
pub fn gifs() -> Vec<(String, Vec<u8>)> {
    let palette = [0u8, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255];
    let make = |frames: &[(u16, u16, u16, u16)], interlaced: bool| {
        let mut out = Vec::new();
        {
            let mut e = gif::Encoder::new(&mut out, 24, 16, &palette).expect("a GIF encoder");
            for (i, &(left, top, w, h)) in frames.iter().enumerate() {
                let pixels: Vec<u8> = (0..u32::from(w) * u32::from(h))
                    .map(|p| ((p as usize + i) % 4) as u8)
                    .collect();
                let mut f = gif::Frame::from_indexed_pixels(w, h, pixels, Some(3));
                (f.left, f.top, f.interlaced, f.delay) = (left, top, interlaced, 10);
                // Each disposal method in turn, for the animation path.
                f.dispose = [
                    gif::DisposalMethod::Keep,
                    gif::DisposalMethod::Background,
                    gif::DisposalMethod::Previous,
                ][i % 3];
                e.write_frame(&f).expect("a frame");
            }
        }
        out
    };
    vec![
        ("g-still.gif".into(), make(&[(0, 0, 24, 16)], false)),
        ("g-interlaced.gif".into(), make(&[(0, 0, 24, 16)], true)),
        (
            "g-animated.gif".into(),
            make(&[(0, 0, 24, 16), (4, 2, 10, 8), (12, 8, 12, 8)], false),
        ),
    ]
}
