//! Input variants a production service meets, each through the pipeline:
//! progressive, grayscale, CMYK and YCCK JPEGs; 16-bit, palette, grayscale
//! (with alpha) and interlaced PNGs. Each is a solid colour; the output must
//! have the asked size and that colour (within JPEG error), never garbage.

use resizer_core::format::ImageFormat;
use resizer_core::params::{Fit, FormatChoice, ResizeParams};
use resizer_imaging::{Limits, Pipeline};
use turbojpeg::{Colorspace, PixelFormat, Subsamp};

const W: usize = 96;
const H: usize = 64;

fn params() -> ResizeParams {
    ResizeParams {
        width: Some(48),
        height: None,
        fit: Fit::Contain,
        format: FormatChoice::Fixed(ImageFormat::Png),
        quality: None,
        enlarge: false,
        frames: resizer_core::params::Frames::All,
    }
}

/// Resizes to 48 wide as PNG and returns the centre pixel (RGB).
fn centre_of_output(input: &[u8]) -> [u8; 3] {
    let mut p = Pipeline::try_new().unwrap();
    let out = p
        .run(input, &params(), ImageFormat::Png, &Limits::default())
        .unwrap_or_else(|e| panic!("refused: {e}"));
    assert_eq!((out.width, out.height), (48, 32));
    let mut reader = png::Decoder::new(std::io::Cursor::new(out.bytes))
        .read_info()
        .unwrap();
    let mut buf = vec![0u8; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let at = (16 * 48 + 24) * channels;
    match channels {
        1 | 2 => [buf[at]; 3],
        _ => [buf[at], buf[at + 1], buf[at + 2]],
    }
}

fn close(got: [u8; 3], want: [u8; 3], what: &str) {
    let off = got.iter().zip(want).map(|(a, b)| a.abs_diff(b)).max().unwrap();
    assert!(off <= 4, "{what}: {got:?}, expected {want:?}");
}

fn jpeg(pixels: &[u8], format: PixelFormat, setup: impl FnOnce(&mut turbojpeg::Compressor)) -> Vec<u8> {
    let mut c = turbojpeg::Compressor::new().unwrap();
    c.set_quality(95).unwrap();
    setup(&mut c);
    let image = turbojpeg::Image {
        pixels,
        width: W,
        pitch: W * format.size(),
        height: H,
        format,
    };
    c.compress_to_vec(image).unwrap()
}

#[test]
fn test_jpeg_variants_keep_their_colour() {
    let rgb: Vec<u8> = [200u8, 100, 50].repeat(W * H);
    let progressive = jpeg(&rgb, PixelFormat::RGB, |c| c.set_progressive(true).unwrap());
    close(centre_of_output(&progressive), [200, 100, 50], "progressive JPEG");

    let gray = vec![90u8; W * H];
    let gray_jpeg = jpeg(&gray, PixelFormat::GRAY, |c| {
        c.set_subsamp(Subsamp::Gray).unwrap()
    });
    close(centre_of_output(&gray_jpeg), [90, 90, 90], "grayscale JPEG");

    // CMYK for (200, 100, 50) without a profile: C = 0, M = 128, Y = 191, K = 55,
    // stored inverted, as Photoshop does and as the Adobe marker libjpeg-turbo writes says.
    let cmyk: Vec<u8> = [255u8, 127, 64, 200].repeat(W * H);
    for (name, space) in [("CMYK", Colorspace::CMYK), ("YCCK", Colorspace::YCCK)] {
        let j = jpeg(&cmyk, PixelFormat::CMYK, |c| {
            c.set_colorspace(space).unwrap();
            c.set_subsamp(Subsamp::None).unwrap();
        });
        close(centre_of_output(&j), [200, 100, 50], name);
    }
}

fn png_bytes(color: png::ColorType, depth: png::BitDepth, data: &[u8], palette: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut e = png::Encoder::new(&mut out, W as u32, H as u32);
        e.set_color(color);
        e.set_depth(depth);
        if let Some(p) = palette {
            e.set_palette(p.to_vec());
        }
        e.write_header().unwrap().write_image_data(data).unwrap();
    }
    out
}

#[test]
fn test_png_variants_keep_their_colour() {
    let rgb16: Vec<u8> = [200u8, 0, 100, 0, 50, 0].repeat(W * H); // 16-bit big-endian
    let p = png_bytes(png::ColorType::Rgb, png::BitDepth::Sixteen, &rgb16, None);
    close(centre_of_output(&p), [200, 100, 50], "16-bit PNG");

    let indexed = vec![1u8; W * H];
    let p = png_bytes(
        png::ColorType::Indexed,
        png::BitDepth::Eight,
        &indexed,
        Some(&[0, 0, 0, 200, 100, 50]),
    );
    close(centre_of_output(&p), [200, 100, 50], "palette PNG");

    let p = png_bytes(
        png::ColorType::Grayscale,
        png::BitDepth::Eight,
        &vec![90u8; W * H],
        None,
    );
    close(centre_of_output(&p), [90, 90, 90], "grayscale PNG");

    let ga: Vec<u8> = [90u8, 255].repeat(W * H);
    let p = png_bytes(png::ColorType::GrayscaleAlpha, png::BitDepth::Eight, &ga, None);
    close(centre_of_output(&p), [90, 90, 90], "grayscale+alpha PNG");

    close(
        centre_of_output(&interlaced_png([200, 100, 50])),
        [200, 100, 50],
        "interlaced PNG",
    );
}

/// An Adam7-interlaced RGB PNG of one colour (the `png` crate cannot write
/// one): seven passes of filter-0 rows in a zlib stream of stored blocks.
fn interlaced_png(c: [u8; 3]) -> Vec<u8> {
    const PASSES: [(usize, usize, usize, usize); 7] = [
        (0, 0, 8, 8),
        (4, 0, 8, 8),
        (0, 4, 4, 8),
        (2, 0, 4, 4),
        (0, 2, 2, 4),
        (1, 0, 2, 2),
        (0, 1, 1, 2),
    ];
    let mut raw = Vec::new();
    for (x0, y0, dx, dy) in PASSES {
        let (pw, ph) = ((W - x0).div_ceil(dx), (H - y0).div_ceil(dy));
        if pw == 0 || ph == 0 {
            continue;
        }
        // Each row: filter type 0, then the pixels.
        let row: Vec<u8> = std::iter::once(0).chain(c.repeat(pw)).collect();
        for _ in 0..ph {
            raw.extend_from_slice(&row);
        }
    }
    let mut z = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, b) in blocks.iter().enumerate() {
        z.push(u8::from(i + 1 == blocks.len()));
        let len = b.len() as u16;
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&(!len).to_le_bytes());
        z.extend_from_slice(b);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &v in &raw {
        a = (a + u32::from(v)) % 65_521;
        b = (b + a) % 65_521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&(W as u32).to_be_bytes());
    ihdr.extend_from_slice(&(H as u32).to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 1]); // 8-bit RGB, interlace method 1
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, body) in [(&b"IHDR"[..], ihdr), (b"IDAT", z), (b"IEND", Vec::new())] {
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        let mut crc_input = kind.to_vec();
        crc_input.extend_from_slice(&body);
        out.extend_from_slice(&crc_input);
        out.extend_from_slice(&crc32(&crc_input).to_be_bytes());
    }
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
