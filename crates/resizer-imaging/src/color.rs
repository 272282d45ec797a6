//! Colour management: an embedded ICC profile (Display P3 from phones, Adobe
//! RGB from cameras, …) is converted to sRGB after decoding, because outputs
//! go out untagged and untagged means sRGB to every viewer. Without this a P3
//! photo comes out dull and an Adobe RGB one washed out.
//!
//! Profiles are read from the JPEG APP2 `ICC_PROFILE` chunks, the PNG `iCCP`
//! chunk, the WebP `ICCP` chunk and the HEIF primary item's `colr` box; the transform is moxcms (pure Rust, SIMD).
//! RGB and grey profiles are converted here; a CMYK profile is applied by
//! the JPEG decoder, which still has the ink values ([`cmyk_to_srgb`]). A
//! profile that does not parse, or does not match the pixels, is ignored, as
//! browsers do.
//! Transforms are cached per thread by profile bytes: a fleet sees the same few
//! profiles over and over.

use std::collections::HashMap;
use std::sync::Arc;

use moxcms::{ColorProfile, DataColorSpace, Layout, Transform8BitExecutor, TransformOptions};
use resizer_core::ImageFormat;

use crate::decode::Pixels;
use crate::error::ImagingError;

/// Profiles larger than this are ignored (real ones are 0.5–60 KB; the bytes
/// are bounded by the request body anyway).
const MAX_PROFILE: usize = 4 << 20;
/// Transforms kept per thread.
const CACHE: usize = 16;

/// The embedded ICC profile, if any.
pub fn embedded_profile(data: &[u8], format: ImageFormat) -> Option<Vec<u8>> {
    let profile = match format {
        ImageFormat::Jpeg => jpeg_profile(data),
        ImageFormat::Png => png_profile(data),
        ImageFormat::Webp => webp_profile(data),
        // GIF's ICC application extension is rare enough to treat GIFs as sRGB.
        ImageFormat::Gif | ImageFormat::Jxl => None,
        ImageFormat::Avif | ImageFormat::Heic => crate::isobmff::probe(data)
            .ok()?
            .icc
            .and_then(|r| data.get(r))
            .map(<[u8]>::to_vec),
    }?;
    (!profile.is_empty() && profile.len() <= MAX_PROFILE).then_some(profile)
}

/// Concatenates the APP2 `ICC_PROFILE` chunks (in sequence order) met before the scan.
fn jpeg_profile(d: &[u8]) -> Option<Vec<u8>> {
    let mut chunks: Vec<(u8, &[u8])> = Vec::new();
    let mut pos = 2;
    while pos + 4 <= d.len() && d[pos] == 0xFF {
        let marker = d[pos + 1];
        if marker == 0xFF {
            pos += 1;
            continue;
        }
        if marker == 0xDA || marker == 0xD9 {
            break;
        }
        if marker == 0x01 || (0xD0..=0xD7).contains(&marker) {
            pos += 2;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([d[pos + 2], d[pos + 3]]));
        let segment = d.get(pos + 4..pos + 2 + len)?;
        if marker == 0xE2 && segment.len() > 14 && segment.starts_with(b"ICC_PROFILE\0") {
            chunks.push((segment[12], &segment[14..]));
        }
        pos += 2 + len;
    }
    if chunks.is_empty() {
        return None;
    }
    chunks.sort_by_key(|(seq, _)| *seq);
    Some(chunks.into_iter().flat_map(|(_, c)| c.iter().copied()).collect())
}

/// The `iCCP` chunk's profile, inflated with its output bounded by
/// [`MAX_PROFILE`] as it goes: a 400 KB chunk can inflate to 400 MB, so the
/// size must be refused before it is allocated, never checked after.
fn png_profile(d: &[u8]) -> Option<Vec<u8>> {
    let mut pos = 8;
    while let (Some(len), Some(kind)) = (d.get(pos..pos + 4), d.get(pos + 4..pos + 8)) {
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if kind == b"IDAT" || kind == b"IEND" {
            return None;
        }
        if kind == b"iCCP" {
            let body = d.get(pos + 8..pos.checked_add(8 + len)?)?;
            // Profile name (1–79 bytes), NUL, compression method 0, zlib stream.
            let nul = body.iter().take(80).position(|&b| b == 0)?;
            let stream = body.get(nul + 2..)?;
            return miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(stream, MAX_PROFILE).ok();
        }
        pos = pos.checked_add(12 + len)?;
    }
    None
}

/// The body of the RIFF `ICCP` chunk of an extended (VP8X) WebP.
fn webp_profile(d: &[u8]) -> Option<Vec<u8>> {
    if d.get(12..16) != Some(b"VP8X") {
        return None;
    }
    let mut pos = 12;
    while let (Some(kind), Some(len)) = (d.get(pos..pos + 4), d.get(pos + 4..pos + 8)) {
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if kind == b"ICCP" {
            return d.get(pos + 8..pos + 8 + len).map(<[u8]>::to_vec);
        }
        pos = pos.checked_add(8 + len + (len & 1))?;
    }
    None
}

/// A cached transform and whether it reads grey (one sample per pixel).
type Cached = Option<(Arc<Transform8BitExecutor>, bool)>;

/// Per-thread transforms to sRGB, by profile bytes and pixel layout.
#[derive(Default)]
pub struct ToSrgb {
    cache: HashMap<(Vec<u8>, u8), Cached>,
}

impl ToSrgb {
    /// Converts `pixels` (RGB or RGBA) from `profile` to sRGB in place; a
    /// profile that is unusable or already sRGB leaves them as they are.
    /// Returns whether a conversion ran.
    pub fn apply(&mut self, pixels: &mut Pixels, profile: &[u8]) -> Result<bool, ImagingError> {
        if !matches!(pixels.channels, 3 | 4) {
            return Ok(false);
        }
        let key = (profile.to_vec(), pixels.channels);
        if !self.cache.contains_key(&key) {
            if self.cache.len() >= CACHE {
                self.cache.clear();
            }
            self.cache
                .insert(key.clone(), transform(profile, pixels.channels));
        }
        let Some((transform, grey)) = self.cache.get(&key).cloned().flatten() else {
            return Ok(false);
        };
        let failed = |e| ImagingError::Internal(format!("colour conversion: {e:?}"));
        let mut out = vec![0u8; pixels.data.len()];
        if grey {
            // A grey profile on colour pixels is a mislabelled file: left alone.
            let c = usize::from(pixels.channels);
            if !pixels.data.chunks_exact(c).all(|p| p[0] == p[1] && p[1] == p[2]) {
                return Ok(false);
            }
            let samples: Vec<u8> = if c == 4 {
                pixels.data.chunks_exact(4).flat_map(|p| [p[0], p[3]]).collect()
            } else {
                pixels.data.iter().step_by(3).copied().collect()
            };
            transform.transform(&samples, &mut out).map_err(failed)?;
        } else {
            transform.transform(&pixels.data, &mut out).map_err(failed)?;
        }
        pixels.data = out;
        Ok(true)
    }
}

/// A transform from an RGB or grey profile to sRGB for pixels of `channels`
/// (grey ones are expanded to RGB by the decoders), or `None` when there is
/// nothing to do.
fn transform(profile: &[u8], channels: u8) -> Cached {
    let source = ColorProfile::new_from_slice(profile).ok()?;
    let dst = if channels == 4 { Layout::Rgba } else { Layout::Rgb };
    let (src, grey) = match source.color_space {
        DataColorSpace::Rgb if !is_srgb(&source) => (dst, false),
        DataColorSpace::Gray if channels == 4 => (Layout::GrayAlpha, true),
        DataColorSpace::Gray => (Layout::Gray, true),
        _ => return None,
    };
    let t = source
        .create_transform_8bit(src, &ColorProfile::new_srgb(), dst, TransformOptions::default())
        .ok()?;
    Some((t, grey))
}

/// Converts CMYK samples as a JPEG stores them (`inverted` when an Adobe
/// marker says 255 means no ink) to sRGB through an embedded CMYK profile.
/// `None` when the profile is not a usable CMYK one: the caller then uses the
/// profile-less conversion browsers use.
pub fn cmyk_to_srgb(cmyk: &[u8], inverted: bool, profile: &[u8]) -> Option<Vec<u8>> {
    let source = ColorProfile::new_from_slice(profile).ok()?;
    if source.color_space != DataColorSpace::Cmyk {
        return None;
    }
    let t = source
        .create_transform_8bit(
            Layout::Rgba,
            &ColorProfile::new_srgb(),
            Layout::Rgb,
            TransformOptions::default(),
        )
        .ok()?;
    let ink: Vec<u8> = if inverted {
        cmyk.iter().map(|v| 255 - v).collect()
    } else {
        cmyk.to_vec()
    };
    let mut out = vec![0u8; cmyk.len() / 4 * 3];
    t.transform(&ink, &mut out).ok()?;
    Some(out)
}

/// Whether a profile has sRGB's primaries and white point (to 1e-3): most
/// camera and web images embed sRGB, and converting them would only cost time.
/// The tone curves are not compared: profiles that match sRGB's primaries
/// and differ only in their curve are rare enough to ignore here.
fn is_srgb(p: &ColorProfile) -> bool {
    let s = ColorProfile::new_srgb();
    let close = |a: moxcms::Xyzd, b: moxcms::Xyzd| {
        (a.x - b.x).abs() < 1e-3 && (a.y - b.y).abs() < 1e-3 && (a.z - b.z).abs() < 1e-3
    };
    close(p.red_colorant, s.red_colorant)
        && close(p.green_colorant, s.green_colorant)
        && close(p.blue_colorant, s.blue_colorant)
        && close(p.white_point, s.white_point)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pixels` (RGB) converted from sRGB into `profile`'s space, as a camera
    /// or phone would have stored them.
    pub(crate) fn from_srgb(pixels: &[u8], profile: &ColorProfile) -> Vec<u8> {
        let t = ColorProfile::new_srgb()
            .create_transform_8bit(Layout::Rgb, profile, Layout::Rgb, TransformOptions::default())
            .unwrap();
        let mut out = vec![0u8; pixels.len()];
        t.transform(pixels, &mut out).unwrap();
        out
    }

    #[test]
    fn test_p3_and_adobe_rgb_pixels_come_back_to_srgb_and_srgb_is_left_alone() {
        let srgb: Vec<u8> = [[200u8, 60, 40], [30, 160, 70], [40, 80, 200], [128, 128, 128]].concat();
        for profile in [ColorProfile::new_display_p3(), ColorProfile::new_adobe_rgb()] {
            let stored = from_srgb(&srgb, &profile);
            assert_ne!(stored, srgb, "the profile changes the numbers");
            let mut px = Pixels {
                data: stored,
                width: 4,
                height: 1,
                channels: 3,
            };
            let bytes = profile.encode().unwrap();
            assert!(ToSrgb::default().apply(&mut px, &bytes).unwrap());
            for (a, b) in px.data.iter().zip(&srgb) {
                assert!(a.abs_diff(*b) <= 3, "{:?} vs {srgb:?}", px.data);
            }
        }
        let mut px = Pixels {
            data: srgb.clone(),
            width: 4,
            height: 1,
            channels: 3,
        };
        let srgb_profile = ColorProfile::new_srgb().encode().unwrap();
        assert!(!ToSrgb::default().apply(&mut px, &srgb_profile).unwrap());
        assert!(!ToSrgb::default().apply(&mut px, b"not a profile").unwrap());
        assert_eq!(px.data, srgb);
    }

    #[test]
    fn test_grey_profile_converts_grey_pixels_and_ignores_colour_ones() {
        // A linear (gamma 1) grey profile: stored 128 is 50 % light, sRGB 188.
        let linear = ColorProfile::new_gray_with_gamma(1.0).encode().unwrap();
        for channels in [3u8, 4] {
            let px: Vec<u8> = [128u8, 128, 128, 200]
                .iter()
                .take(usize::from(channels))
                .copied()
                .collect();
            let mut pixels = Pixels {
                data: px.repeat(2),
                width: 2,
                height: 1,
                channels,
            };
            assert!(ToSrgb::default().apply(&mut pixels, &linear).unwrap());
            let v = pixels.data[0];
            assert!((184..=192).contains(&v), "{:?}", pixels.data);
            assert_eq!((pixels.data[1], pixels.data[2]), (v, v));
            if channels == 4 {
                assert_eq!(pixels.data[3], 200, "alpha kept");
            }
        }
        let mut colour = Pixels {
            data: vec![200, 60, 40],
            width: 1,
            height: 1,
            channels: 3,
        };
        assert!(!ToSrgb::default().apply(&mut colour, &linear).unwrap());
        assert_eq!(colour.data, [200, 60, 40]);
    }

    #[test]
    fn test_cmyk_needs_a_cmyk_profile() {
        let rgb_profile = ColorProfile::new_display_p3().encode().unwrap();
        assert_eq!(cmyk_to_srgb(&[0, 0, 0, 0], false, &rgb_profile), None);
        assert_eq!(cmyk_to_srgb(&[0, 0, 0, 0], false, b"junk"), None);
    }

    #[test]
    fn test_jpeg_profile_chunks_are_joined_in_sequence_order() {
        let mut d = vec![0xFF, 0xD8];
        for (seq, body) in [(2u8, &b"world"[..]), (1, &b"hello "[..])] {
            let mut seg = b"ICC_PROFILE\0".to_vec();
            seg.extend_from_slice(&[seq, 2]);
            seg.extend_from_slice(body);
            d.extend_from_slice(&[0xFF, 0xE2]);
            d.extend_from_slice(&((seg.len() + 2) as u16).to_be_bytes());
            d.extend_from_slice(&seg);
        }
        d.extend_from_slice(&[0xFF, 0xDA, 0, 2]);
        assert_eq!(jpeg_profile(&d).unwrap(), b"hello world");
        assert_eq!(jpeg_profile(&[0xFF, 0xD8, 0xFF, 0xDA, 0, 2]), None);
    }
}
