//! Decoders: JPEG through libjpeg-turbo (with DCT-domain downscaling), PNG
//! through the `png` crate, WebP through libwebp, AVIF and HEIC through
//! libheif ([`crate::heif`]). Output is always 8-bit RGB
//! or RGBA, interleaved.

use std::io::Cursor;

use resizer_core::ImageFormat;
use turbojpeg::{Colorspace, PixelFormat, ScalingFactor};

use crate::error::ImagingError;
use crate::probe::Probe;

/// Interleaved 8-bit pixels.
#[derive(Debug, Clone)]
pub struct Pixels {
    /// Row-major samples, `width * height * channels` bytes, no padding.
    pub data: Vec<u8>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// 3 (RGB) or 4 (RGBA); 1 only inside unit tests.
    pub channels: u8,
}

pub use crate::limits::ShrinkOnLoad;

/// Picks the JPEG decode scale M/8: the smallest that still leaves the
/// resampler a shrink of at least `gap`.
pub fn jpeg_scale_eighths(shrink: f64, gap: f64) -> usize {
    (1..=8).find(|m| shrink * (*m as f64) / 8.0 >= gap).unwrap_or(8)
}

/// Most scans a progressive JPEG may have. Each scan is a pass over every
/// coefficient of the image, so without a bound a 140 KB file of repeated
/// 31-byte scans costs seconds of CPU; real encoders write about ten (libjpeg's
/// default script), mozjpeg's optimised scripts a few more.
pub const MAX_JPEG_SCANS: u32 = 64;

/// A TurboJPEG error through the crate: a harmless warning after a complete
/// decode is no error ([`crate::jpeg12::HARMLESS_WARNINGS`]).
fn tolerate_warning(e: turbojpeg::Error) -> Result<(), ImagingError> {
    let message = e.to_string();
    if crate::jpeg12::is_harmless(&message) {
        Ok(())
    } else {
        Err(undecodable(message))
    }
}

fn undecodable(e: impl std::fmt::Display) -> ImagingError {
    ImagingError::Undecodable(e.to_string())
}

/// Largest pixel buffer a thread keeps between jobs. A fit-320 decode of a
/// 12 MP photo at 1/4 is 2.3 MB; one huge image must not pin hundreds of MB
/// per thread for the rest of the process's life.
pub const MAX_REUSED_BUFFER: usize = 16 << 20;

/// Takes `scratch` (a buffer from an earlier job, possibly empty) and returns
/// it holding exactly `len` bytes. Zeroes only what was never written, so a
/// run of same-sized images pays no memset and no page faults.
fn sized(mut scratch: Vec<u8>, len: usize) -> Vec<u8> {
    if scratch.len() >= len {
        scratch.truncate(len);
    } else {
        scratch.resize(len, 0);
    }
    scratch
}

/// Decodes `data`, which [`crate::probe`] has already accepted.
/// `shrink` is the plan's shrink ratio, used for shrink-on-load as far as
/// `mode` allows; `scratch` is a reusable buffer the JPEG path decodes into
/// (see [`MAX_REUSED_BUFFER`]).
pub fn decode(
    jpeg: &mut turbojpeg::Decompressor,
    data: &[u8],
    probe: &Probe,
    shrink: f64,
    mode: ShrinkOnLoad,
    max_pixels: u64,
    scratch: Vec<u8>,
) -> Result<Pixels, ImagingError> {
    let gap = mode.reducing_gap();
    match probe.format {
        ImageFormat::Jpeg => decode_jpeg(jpeg, data, probe, shrink, gap, scratch),
        ImageFormat::Png => decode_png(data, max_pixels),
        ImageFormat::Webp => decode_webp(data, probe, shrink, gap),
        ImageFormat::Avif | ImageFormat::Heic => decode_heif(data, probe, max_pixels),
        ImageFormat::Gif => crate::animation::first_gif_frame(data, probe, max_pixels),
        ImageFormat::Jxl => Err(ImagingError::UnsupportedFormat(
            "JPEG XL is written, not read".into(),
        )),
    }
}

fn decode_jpeg(
    dec: &mut turbojpeg::Decompressor,
    data: &[u8],
    probe: &Probe,
    shrink: f64,
    gap: f64,
    scratch: Vec<u8>,
) -> Result<Pixels, ImagingError> {
    if crate::jpeg12::precision(data) == Some(12) {
        return crate::jpeg12::decode(data, probe.width, probe.height, shrink, gap);
    }
    let header = match dec.read_header(data) {
        Ok(header) => header,
        // The crate refuses any warning, and reads the header again in each
        // decode: past a harmless one the decode is whole, through the raw API.
        Err(e) => return tolerate_warning(e).and_then(|()| decode_jpeg_whole(data, probe)),
    };
    // The limits were checked against the probe's reading of the header; the
    // decoder must be decoding that image and not another one the file also holds.
    if (header.width, header.height) != (probe.width as usize, probe.height as usize) {
        return Err(ImagingError::Undecodable(
            "the JPEG frame header disagrees with the probed dimensions".into(),
        ));
    }
    dec.set_scan_limit(MAX_JPEG_SCANS).map_err(undecodable)?;
    let m = jpeg_scale_eighths(shrink, gap);
    let g = gcd(m, 8);
    let factor = ScalingFactor::new(m / g, 8 / g);
    let factor = if turbojpeg::Decompressor::supported_scaling_factors().contains(&factor) {
        factor
    } else {
        ScalingFactor::new(1, 1)
    };
    dec.set_scaling_factor(factor).map_err(undecodable)?;
    let scaled = header.scaled(factor);
    let cmyk = matches!(header.colorspace, Colorspace::CMYK | Colorspace::YCCK) || probe.cmyk;
    let format = if cmyk { PixelFormat::CMYK } else { PixelFormat::RGB };
    let bpp = format.size();
    let mut image = turbojpeg::Image {
        pixels: sized(scratch, scaled.width * scaled.height * bpp),
        width: scaled.width,
        pitch: scaled.width * bpp,
        height: scaled.height,
        format,
    };
    dec.decompress(data, image.as_deref_mut())
        .or_else(tolerate_warning)?;
    Ok(Pixels {
        data: jpeg_rgb(data, image.pixels, cmyk, probe),
        width: scaled.width as u32,
        height: scaled.height as u32,
        channels: 3,
    })
}

/// An 8-bit JPEG decoded whole (no shrink-on-load) past a harmless header
/// warning.
fn decode_jpeg_whole(data: &[u8], probe: &Probe) -> Result<Pixels, ImagingError> {
    let pixels = crate::jpeg12::decode8_whole(data, probe.width, probe.height, probe.cmyk)?;
    Ok(Pixels {
        data: jpeg_rgb(data, pixels, probe.cmyk, probe),
        width: probe.width,
        height: probe.height,
        channels: 3,
    })
}

/// RGB from decoded JPEG samples: CMYK through the file's profile when it has one.
fn jpeg_rgb(data: &[u8], samples: Vec<u8>, cmyk: bool, probe: &Probe) -> Vec<u8> {
    if cmyk {
        crate::color::embedded_profile(data, ImageFormat::Jpeg)
            .and_then(|profile| crate::color::cmyk_to_srgb(&samples, probe.adobe, &profile))
            .unwrap_or_else(|| cmyk_to_rgb(&samples, probe.adobe))
    } else {
        samples
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Converts CMYK to RGB without a profile (what browsers do then). Adobe
/// writers store CMYK inverted, which is why the two cases differ.
fn cmyk_to_rgb(cmyk: &[u8], inverted: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(cmyk.len() / 4 * 3);
    for px in cmyk.chunks_exact(4) {
        let [c, m, y, k] = if inverted {
            [px[0], px[1], px[2], px[3]]
        } else {
            [255 - px[0], 255 - px[1], 255 - px[2], 255 - px[3]]
        };
        let k = u32::from(k);
        for v in [c, m, y] {
            out.push(((u32::from(v) * k + 127) / 255) as u8);
        }
    }
    out
}

/// libheif's decode, held to the header the limits were checked against: a
/// clean-aperture crop may make the image smaller, but a coded picture larger
/// than its `ispe` (which libheif passes on uncropped) is a lying header.
fn decode_heif(data: &[u8], probe: &Probe, max_pixels: u64) -> Result<Pixels, ImagingError> {
    let pixels = crate::heif::decode(data, max_pixels)?;
    if pixels.width > probe.width || pixels.height > probe.height {
        return Err(ImagingError::Undecodable(format!(
            "the HEIF image decodes to {}x{}, larger than the {}x{} its header declares",
            pixels.width, pixels.height, probe.width, probe.height
        )));
    }
    Ok(pixels)
}

fn decode_png(data: &[u8], max_pixels: u64) -> Result<Pixels, ImagingError> {
    // The header was checked against the pixel limit; this bounds what the
    // decoder may allocate even if a later chunk lies.
    let limit_bytes = usize::try_from(max_pixels.saturating_mul(8)).unwrap_or(usize::MAX);
    let mut decoder = png::Decoder::new_with_limits(Cursor::new(data), png::Limits { bytes: limit_bytes });
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    // The profile is read (bounded) by `color`; text is never used. Both are
    // compressed, and inflating them here would be bounded only by `limit_bytes`.
    decoder.set_ignore_iccp_chunk(true);
    decoder.set_ignore_text_chunk(true);
    let mut reader = decoder.read_info().map_err(undecodable)?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| ImagingError::Undecodable("PNG output size overflows".into()))?;
    let mut buf = vec![0u8; size];
    let info = reader.next_frame(&mut buf).map_err(undecodable)?;
    buf.truncate(info.buffer_size());
    let (w, h) = (info.width, info.height);
    let (data, channels) = match info.color_type {
        png::ColorType::Rgb => (buf, 3),
        png::ColorType::Rgba => (buf, 4),
        png::ColorType::Grayscale => (buf.iter().flat_map(|&g| [g, g, g]).collect(), 3),
        png::ColorType::GrayscaleAlpha => (
            buf.chunks_exact(2)
                .flat_map(|p| [p[0], p[0], p[0], p[1]])
                .collect(),
            4,
        ),
        png::ColorType::Indexed => {
            return Err(ImagingError::Internal("palette PNG was not expanded".into()));
        }
    };
    Ok(Pixels {
        data,
        width: w,
        height: h,
        channels,
    })
}

/// Decodes a still WebP with libwebp's own rescaler doing the first part of
/// a large shrink (shrink-on-load, as libvips does): the image comes out at
/// `gap` times the output size, straight into our buffer, and the Lanczos
/// step does the rest. No scaling when the shrink is small.
fn decode_webp(data: &[u8], probe: &Probe, shrink: f64, gap: f64) -> Result<Pixels, ImagingError> {
    use libwebp_sys as sys;
    let corrupt = || ImagingError::Undecodable("WebP data is corrupt or truncated".into());
    // SAFETY: the config is plain data initialised by libwebp; the output buffer
    // is ours (external memory), sized from the dimensions we pass, and outlives
    // the call; libwebp only writes within `size`.
    unsafe {
        let mut config: sys::WebPDecoderConfig = std::mem::zeroed();
        if !sys::WebPInitDecoderConfig(&mut config) {
            return Err(ImagingError::Internal("libwebp version mismatch".into()));
        }
        if sys::WebPGetFeatures(data.as_ptr(), data.len(), &mut config.input)
            != sys::VP8StatusCode::VP8_STATUS_OK
        {
            return Err(corrupt());
        }
        let (w, h) = (
            config.input.width.max(1) as u32,
            config.input.height.max(1) as u32,
        );
        if (w, h) != (probe.width, probe.height) {
            return Err(corrupt());
        }
        if config.input.has_animation != 0 {
            return crate::animation::first_webp_frame(data, probe);
        }
        let (mut dw, mut dh) = (w, h);
        if shrink > 2.0 * gap {
            let factor = shrink / gap;
            dw = ((f64::from(w) / factor).ceil() as u32).max(1);
            dh = ((f64::from(h) / factor).ceil() as u32).max(1);
            config.options.use_scaling = 1;
            config.options.scaled_width = dw as i32;
            config.options.scaled_height = dh as i32;
        }
        let channels: u8 = if config.input.has_alpha != 0 { 4 } else { 3 };
        let stride = dw as usize * usize::from(channels);
        let mut pixels = vec![0u8; stride * dh as usize];
        config.output.colorspace = if channels == 4 {
            sys::WEBP_CSP_MODE::MODE_RGBA
        } else {
            sys::WEBP_CSP_MODE::MODE_RGB
        };
        config.output.is_external_memory = 1;
        config.output.u.RGBA.rgba = pixels.as_mut_ptr();
        config.output.u.RGBA.stride = stride as i32;
        config.output.u.RGBA.size = pixels.len();
        let status = sys::WebPDecode(data.as_ptr(), data.len(), &mut config);
        sys::WebPFreeDecBuffer(&mut config.output);
        if status != sys::VP8StatusCode::VP8_STATUS_OK {
            return Err(corrupt());
        }
        Ok(Pixels {
            data: pixels,
            width: dw,
            height: dh,
            channels,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_webp_shrinks_on_load_only_for_large_shrinks() {
        let rgb: Vec<u8> = (0..400 * 300).flat_map(|i| [(i % 251) as u8, 90, 160]).collect();
        let webp = webp::Encoder::from_rgb(&rgb, 400, 300).encode(80.0).to_vec();
        let probe = crate::probe::probe(&webp).unwrap();
        let big = decode_webp(&webp, &probe, 10.0, 2.0).unwrap();
        assert_eq!((big.width, big.height, big.channels), (80, 60, 3));
        assert_eq!(big.data.len(), 80 * 60 * 3);
        let small = decode_webp(&webp, &probe, 3.0, 2.0).unwrap();
        assert_eq!((small.width, small.height), (400, 300));
        // Roughly the colour that went in (lossy, rescaled).
        let g = small.data.chunks_exact(3).map(|p| u32::from(p[1])).sum::<u32>() / (400 * 300);
        assert!((80..=100).contains(&g), "{g}");
        assert!(matches!(
            decode_webp(&webp[..webp.len() / 2], &probe, 10.0, 2.0),
            Err(ImagingError::Undecodable(_))
        ));
    }

    #[test]
    fn test_sized_reuses_and_zeroes_only_new_bytes() {
        let b = sized(Vec::new(), 4);
        assert_eq!(b, vec![0; 4]);
        let mut b = b;
        b.copy_from_slice(&[1, 2, 3, 4]);
        let ptr = b.as_ptr();
        let b = sized(b, 2);
        assert_eq!((b.as_slice(), b.as_ptr()), (&[1u8, 2][..], ptr));
        let b = sized(b, 3);
        assert_eq!(b, vec![1, 2, 0]);
    }

    #[test]
    fn test_jpeg_scale_leaves_reducing_gap() {
        let gap = ShrinkOnLoad::Quality.reducing_gap();
        assert_eq!(jpeg_scale_eighths(1.0, gap), 8);
        assert_eq!(jpeg_scale_eighths(2.0, gap), 8);
        assert_eq!(jpeg_scale_eighths(5.0, gap), 4);
        assert_eq!(jpeg_scale_eighths(16.0, gap), 1);
        assert_eq!(jpeg_scale_eighths(100.0, gap), 1);
        // Fast: the smallest scale that still covers the output (1600 -> 320 decodes at 1/4).
        let fast = ShrinkOnLoad::Fast.reducing_gap();
        assert_eq!(jpeg_scale_eighths(5.0, fast), 2);
        assert_eq!(jpeg_scale_eighths(1.5, fast), 6);
        assert_eq!(jpeg_scale_eighths(8.0, fast), 1);
    }

    #[test]
    fn test_jpeg_decode_refuses_a_frame_other_than_the_probed_one() {
        let px = vec![128u8; 64 * 48 * 3];
        let image = turbojpeg::Image {
            pixels: px.as_slice(),
            width: 64,
            pitch: 64 * 3,
            height: 48,
            format: PixelFormat::RGB,
        };
        let jpeg = turbojpeg::compress(image, 80, turbojpeg::Subsamp::Sub2x2).unwrap();
        let honest = crate::probe::probe(&jpeg).unwrap();
        let mut dec = turbojpeg::Decompressor::new().unwrap();
        assert!(decode_jpeg(&mut dec, &jpeg, &honest, 1.0, 2.0, Vec::new()).is_ok());
        // What the limits were checked against must be what is decoded.
        let lying = Probe {
            width: 16,
            height: 12,
            ..honest
        };
        let mut dec = turbojpeg::Decompressor::new().unwrap();
        assert!(matches!(
            decode_jpeg(&mut dec, &jpeg, &lying, 1.0, 2.0, Vec::new()),
            Err(ImagingError::Undecodable(_))
        ));
    }

    #[test]
    fn test_cmyk_conversion_both_conventions() {
        assert_eq!(cmyk_to_rgb(&[255, 255, 255, 255], true), vec![255, 255, 255]);
        assert_eq!(cmyk_to_rgb(&[0, 0, 0, 0], false), vec![255, 255, 255]);
        assert_eq!(cmyk_to_rgb(&[0, 255, 255, 0], false), vec![255, 0, 0]);
    }
}
