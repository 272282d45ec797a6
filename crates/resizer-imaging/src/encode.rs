//! Encoders: JPEG through libjpeg-turbo, PNG through the `png` crate, WebP
//! through libwebp, AVIF through libheif and libaom, GIF through the `gif`
//! crate ([`crate::animation`]). No metadata is ever
//! written, which strips EXIF, XMP and comments by construction.

use resizer_core::ImageFormat;

use crate::decode::Pixels;
use crate::error::ImagingError;

/// Quality used when the request gives none (JPEG and WebP; AVIF has its own,
/// [`crate::heif::DEFAULT_AVIF_QUALITY`]).
pub const DEFAULT_QUALITY: u8 = 80;

fn internal(e: impl std::fmt::Display) -> ImagingError {
    ImagingError::Internal(e.to_string())
}

/// Encodes `pixels`. RGBA is flattened onto white for JPEG, and an RGBA image
/// that is fully opaque is written without its alpha channel.
pub fn encode(
    jpeg: &mut turbojpeg::Compressor,
    pixels: Pixels,
    format: ImageFormat,
    quality_opt: Option<u8>,
    avif_speed: i32,
) -> Result<Vec<u8>, ImagingError> {
    let quality = quality_opt.unwrap_or(match format {
        ImageFormat::Avif => crate::heif::DEFAULT_AVIF_QUALITY,
        _ => DEFAULT_QUALITY,
    });
    let pixels = if pixels.channels == 4 && (!format.supports_alpha() || is_opaque(&pixels.data)) {
        flatten_on_white(pixels)
    } else {
        pixels
    };
    let (w, h) = (pixels.width, pixels.height);
    match format {
        ImageFormat::Jpeg => {
            jpeg.set_quality(i32::from(quality)).map_err(internal)?;
            jpeg.set_subsamp(turbojpeg::Subsamp::Sub2x2).map_err(internal)?;
            let image = turbojpeg::Image {
                pixels: pixels.data.as_slice(),
                width: w as usize,
                pitch: w as usize * 3,
                height: h as usize,
                format: turbojpeg::PixelFormat::RGB,
            };
            jpeg.compress_to_vec(image).map_err(internal)
        }
        ImageFormat::Png => encode_png(&pixels),
        ImageFormat::Webp => {
            let layout = if pixels.channels == 4 {
                webp::PixelLayout::Rgba
            } else {
                webp::PixelLayout::Rgb
            };
            let memory = webp::Encoder::new(&pixels.data, layout, w, h)
                .encode_simple(false, f32::from(quality))
                .map_err(|e| internal(format!("{e:?}")))?;
            Ok(memory.to_vec())
        }
        ImageFormat::Avif => crate::heif::encode_avif(&pixels, quality, avif_speed),
        ImageFormat::Gif => crate::animation::encode_gif(vec![still(pixels)], 1, &|| Ok(())),
        ImageFormat::Jxl => encode_jxl(&pixels),
        ImageFormat::Heic => Err(internal(format!("{format} is read, not written"))),
    }
}

/// Lossless JPEG XL (modular mode), 8-bit RGB or RGBA, on the calling
/// imaging thread alone (the encoder's own threads are compiled out: the
/// pool is the CPU budget). `quality` does not apply.
fn encode_jxl(pixels: &Pixels) -> Result<Vec<u8>, ImagingError> {
    use zune_core::bit_depth::BitDepth;
    use zune_core::colorspace::ColorSpace;
    use zune_core::options::EncoderOptions;
    let colorspace = if pixels.channels == 4 {
        ColorSpace::RGBA
    } else {
        ColorSpace::RGB
    };
    let options = EncoderOptions::new(
        pixels.width as usize,
        pixels.height as usize,
        colorspace,
        BitDepth::Eight,
    );
    let mut out = Vec::with_capacity(pixels.data.len() / 2);
    zune_jpegxl::JxlSimpleEncoder::new(&pixels.data, options)
        .encode(&mut out)
        .map_err(|e| internal(format!("jpeg xl: {e:?}")))?;
    Ok(out)
}

/// PNG, 8-bit RGB or RGBA, at the `png` crate's fast deflate level.
fn encode_png(pixels: &Pixels) -> Result<Vec<u8>, ImagingError> {
    let (w, h) = (pixels.width, pixels.height);
    let mut out = Vec::with_capacity(pixels.data.len() / 2);
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(if pixels.channels == 4 {
        png::ColorType::Rgba
    } else {
        png::ColorType::Rgb
    });
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header().map_err(internal)?;
    writer.write_image_data(&pixels.data).map_err(internal)?;
    writer.finish().map_err(internal)?;
    Ok(out)
}

/// A still as a one-frame GIF "animation" (no loop extension, no delay).
fn still(pixels: Pixels) -> crate::animation::Frame {
    crate::animation::Frame {
        pixels,
        duration_ms: 0,
    }
}

fn is_opaque(rgba: &[u8]) -> bool {
    rgba.chunks_exact(4).all(|p| p[3] == 255)
}

/// Composites RGBA onto an opaque white background.
pub fn flatten_on_white(pixels: Pixels) -> Pixels {
    if pixels.channels != 4 {
        return pixels;
    }
    let mut out = Vec::with_capacity(pixels.data.len() / 4 * 3);
    for p in pixels.data.chunks_exact(4) {
        let a = u32::from(p[3]);
        for &c in &p[..3] {
            out.push(((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8);
        }
    }
    Pixels {
        data: out,
        width: pixels.width,
        height: pixels.height,
        channels: 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_flatten_on_white() {
        let p = Pixels {
            data: vec![0, 0, 0, 0, 0, 0, 0, 255, 200, 100, 0, 128],
            width: 3,
            height: 1,
            channels: 4,
        };
        let f = flatten_on_white(p);
        assert_eq!(f.channels, 3);
        assert_eq!(&f.data[0..3], &[255, 255, 255]);
        assert_eq!(&f.data[3..6], &[0, 0, 0]);
        assert_eq!(&f.data[6..9], &[227, 177, 127]);
    }
}
