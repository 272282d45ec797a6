//! Reads format, dimensions and orientation from the first bytes of an image.
//!
//! Nothing here allocates pixel memory: this is what lets the API refuse a
//! 1 KB file that claims 60000×60000 before any decoder sees it.

use resizer_core::ImageFormat;

use crate::error::{ImagingError, truncated};
use crate::exif;
use crate::isobmff;

/// What the header says about an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// Container format.
    pub format: ImageFormat,
    /// Stored width (before orientation).
    pub width: u32,
    /// Stored height (before orientation).
    pub height: u32,
    /// EXIF orientation, 1 (upright) when absent.
    pub orientation: u8,
    /// A JPEG with four colour components (CMYK or YCCK).
    pub cmyk: bool,
    /// The JPEG carries an Adobe APP14 marker (CMYK stored inverted).
    pub adobe: bool,
    /// Frames: more than 1 for an animated GIF or WebP (counted from the
    /// frame headers, never decoded), 1 for every still.
    pub frames: u32,
}

impl Probe {
    /// Returns the pixel count declared by the header.
    pub fn pixels(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }

    /// Pixels decoded for every frame of the animation: each frame is
    /// composited onto the whole canvas.
    pub fn animation_pixels(&self) -> u64 {
        self.pixels().saturating_mul(u64::from(self.frames))
    }

    /// Returns the displayed size, after orientation.
    pub fn oriented_size(&self) -> (u32, u32) {
        if self.orientation >= 5 {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }
}

/// Identifies the format from magic bytes alone.
pub fn sniff(data: &[u8]) -> Option<ImageFormat> {
    if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageFormat::Jpeg)
    } else if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ImageFormat::Png)
    } else if data.len() >= 12 && &data[0..4] == b"RIFF" && &data[8..12] == b"WEBP" {
        Some(ImageFormat::Webp)
    } else if data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a") {
        Some(ImageFormat::Gif)
    } else {
        // A generic HEIF brand is decided by the primary item's codec.
        isobmff::sniff(data).map(|f| {
            f.or_else(|| isobmff::probe(data).ok().map(|h| h.format))
                .unwrap_or(ImageFormat::Avif)
        })
    }
}

/// Reads the header. Unknown bytes are `UnsupportedFormat`; a known format
/// whose header is cut short or inconsistent is `Undecodable`.
pub fn probe(data: &[u8]) -> Result<Probe, ImagingError> {
    let probe = match sniff(data) {
        Some(ImageFormat::Jpeg) => probe_jpeg(data)?,
        Some(ImageFormat::Png) => probe_png(data)?,
        Some(ImageFormat::Webp) => probe_webp(data)?,
        Some(ImageFormat::Avif | ImageFormat::Heic) => probe_heif(data)?,
        Some(ImageFormat::Gif) => probe_gif(data)?,
        // `sniff` never answers JPEG XL: it is written, not read.
        Some(ImageFormat::Jxl) | None => {
            return Err(ImagingError::UnsupportedFormat(
                "the body is not a JPEG, PNG, WebP, AVIF, HEIC or GIF image".into(),
            ));
        }
    };
    if probe.width == 0 || probe.height == 0 {
        return Err(ImagingError::Undecodable(
            "the header declares a zero dimension".into(),
        ));
    }
    Ok(probe)
}

/// Big-endian u16 at `off`, if the bytes are there (shared with `isobmff`).
pub(crate) fn be16(d: &[u8], off: usize) -> Option<u16> {
    d.get(off..off + 2).map(|b| u16::from_be_bytes([b[0], b[1]]))
}

/// Big-endian u32 at `off`, if the bytes are there.
pub(crate) fn be32(d: &[u8], off: usize) -> Option<u32> {
    d.get(off..off + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn le16(d: &[u8], off: usize) -> Option<u16> {
    d.get(off..off + 2).map(|b| u16::from_le_bytes([b[0], b[1]]))
}

fn le24(d: &[u8], off: usize) -> Option<u32> {
    d.get(off..off + 3)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], 0]))
}

fn le32(d: &[u8], off: usize) -> Option<u32> {
    d.get(off..off + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn probe_jpeg(d: &[u8]) -> Result<Probe, ImagingError> {
    let mut orientation = 1;
    let mut adobe = false;
    let mut pos = 2;
    loop {
        // Skip fill bytes before a marker.
        while d.get(pos) == Some(&0xFF) && d.get(pos + 1) == Some(&0xFF) {
            pos += 1;
        }
        if d.get(pos) != Some(&0xFF) {
            return Err(truncated("JPEG"));
        }
        let marker = *d.get(pos + 1).ok_or_else(|| truncated("JPEG"))?;
        pos += 2;
        if marker == 0x01 || (0xD0..=0xD7).contains(&marker) {
            continue; // standalone markers carry no length
        }
        if marker == 0xD9 || marker == 0xDA {
            return Err(truncated("JPEG")); // end of image or scan before any frame header
        }
        let len = be16(d, pos).ok_or_else(|| truncated("JPEG"))? as usize;
        if len < 2 {
            return Err(truncated("JPEG"));
        }
        let segment = d.get(pos + 2..pos + len).ok_or_else(|| truncated("JPEG"))?;
        match marker {
            0xE1 if segment.starts_with(b"Exif\0\0") => {
                if let Some(o) = exif::orientation(&segment[6..]) {
                    orientation = o;
                }
            }
            0xEE if segment.starts_with(b"Adobe") => adobe = true,
            0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                let height = be16(segment, 1).ok_or_else(|| truncated("JPEG"))?;
                let width = be16(segment, 3).ok_or_else(|| truncated("JPEG"))?;
                let components = *segment.get(5).ok_or_else(|| truncated("JPEG"))?;
                return Ok(Probe {
                    format: ImageFormat::Jpeg,
                    width: u32::from(width),
                    height: u32::from(height),
                    orientation,
                    cmyk: components == 4,
                    adobe,
                    frames: 1,
                });
            }
            _ => {}
        }
        pos += len;
    }
}

fn probe_png(d: &[u8]) -> Result<Probe, ImagingError> {
    if be32(d, 8) != Some(13) || d.get(12..16) != Some(b"IHDR") {
        return Err(truncated("PNG"));
    }
    let width = be32(d, 16).ok_or_else(|| truncated("PNG"))?;
    let height = be32(d, 20).ok_or_else(|| truncated("PNG"))?;
    // EXIF (eXIf) must precede IDAT; walk the chunks up to it.
    let mut orientation = 1;
    let mut pos = 33;
    while let (Some(len), Some(kind)) = (be32(d, pos), d.get(pos + 4..pos + 8)) {
        let len = len as usize;
        if kind == b"IDAT" || kind == b"IEND" {
            break;
        }
        if kind == b"eXIf"
            && let Some(body) = d.get(pos + 8..pos + 8 + len)
        {
            orientation = exif::orientation(body).unwrap_or(1);
        }
        pos = match pos.checked_add(12 + len) {
            Some(p) => p,
            None => break,
        };
    }
    Ok(Probe {
        format: ImageFormat::Png,
        width,
        height,
        orientation,
        cmyk: false,
        adobe: false,
        frames: 1,
    })
}

/// The logical screen: every frame is drawn inside it (the decoder refuses
/// one that is not), so it bounds the pixels of a still.
fn probe_gif(d: &[u8]) -> Result<Probe, ImagingError> {
    let width = le16(d, 6).ok_or_else(|| truncated("GIF"))?;
    let height = le16(d, 8).ok_or_else(|| truncated("GIF"))?;
    Ok(Probe {
        format: ImageFormat::Gif,
        width: u32::from(width),
        height: u32::from(height),
        orientation: 1,
        cmyk: false,
        adobe: false,
        frames: gif_frames(d).max(1),
    })
}

/// Counts a GIF's image descriptors by walking its blocks, skipping every
/// data sub-block unread: linear in the file's size, no LZW decoded. A
/// truncated file counts the frames that start before the cut.
fn gif_frames(d: &[u8]) -> u32 {
    // Header (6), logical screen descriptor (7), then the global colour table.
    let flags = d.get(10).copied().unwrap_or(0);
    let table = |flags: u8| {
        if flags & 0x80 != 0 {
            3usize << ((flags & 7) + 1)
        } else {
            0
        }
    };
    let mut pos = 13 + table(flags);
    let mut frames = 0u32;
    // Skips a chain of data sub-blocks (length byte, bytes), ending at a 0 length.
    let skip_blocks = |mut pos: usize| -> Option<usize> {
        loop {
            let len = usize::from(*d.get(pos)?);
            pos += 1 + len;
            if len == 0 {
                return Some(pos);
            }
        }
    };
    loop {
        let next = match d.get(pos) {
            Some(0x21) => skip_blocks(pos + 2),
            Some(0x2C) => {
                frames = frames.saturating_add(1);
                // Descriptor (10), local colour table, LZW minimum code size (1).
                let local = d.get(pos + 9).map_or(0, |&f| table(f));
                skip_blocks(pos + 10 + local + 1)
            }
            _ => None, // the trailer (0x3B), garbage or the end
        };
        match next {
            Some(p) => pos = p,
            None => return frames,
        }
    }
}

/// HEIF decoders apply the item's rotation themselves, so the probe reports
/// the displayed size and no orientation left to apply (an EXIF orientation
/// in a HEIF file is informative only, and ignored as the format says).
fn probe_heif(d: &[u8]) -> Result<Probe, ImagingError> {
    let heif = isobmff::probe(d)?;
    let (width, height) = if heif.quarter_turns % 2 == 1 {
        (heif.height, heif.width)
    } else {
        (heif.width, heif.height)
    };
    Ok(Probe {
        format: heif.format,
        width,
        height,
        orientation: 1,
        cmyk: false,
        adobe: false,
        frames: 1,
    })
}

fn probe_webp(d: &[u8]) -> Result<Probe, ImagingError> {
    let kind = d.get(12..16).ok_or_else(|| truncated("WebP"))?;
    let (width, height, mut orientation) = match kind {
        b"VP8 " => {
            if d.get(23..26) != Some(&[0x9d, 0x01, 0x2a]) {
                return Err(truncated("WebP"));
            }
            let w = le16(d, 26).ok_or_else(|| truncated("WebP"))? & 0x3fff;
            let h = le16(d, 28).ok_or_else(|| truncated("WebP"))? & 0x3fff;
            (u32::from(w), u32::from(h), 1)
        }
        b"VP8L" => {
            if d.get(20) != Some(&0x2f) {
                return Err(truncated("WebP"));
            }
            let bits = le32(d, 21).ok_or_else(|| truncated("WebP"))?;
            ((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1, 1)
        }
        b"VP8X" => {
            let w = le24(d, 24).ok_or_else(|| truncated("WebP"))? + 1;
            let h = le24(d, 27).ok_or_else(|| truncated("WebP"))? + 1;
            (w, h, 1)
        }
        _ => return Err(truncated("WebP")),
    };
    let mut frames = 0u32;
    if kind == b"VP8X" {
        let mut pos = 12;
        while let (Some(kind), Some(len)) = (d.get(pos..pos + 4), le32(d, pos + 4)) {
            let len = len as usize;
            if kind == b"ANMF" {
                frames = frames.saturating_add(1);
            }
            if kind == b"EXIF"
                && let Some(body) = d.get(pos + 8..pos + 8 + len)
            {
                // Some writers keep the JPEG-style "Exif\0\0" prefix.
                let body = body.strip_prefix(b"Exif\0\0").unwrap_or(body);
                orientation = exif::orientation(body).unwrap_or(1);
            }
            pos = match pos.checked_add(8 + len + (len & 1)) {
                Some(p) => p,
                None => break,
            };
        }
    }
    Ok(Probe {
        format: ImageFormat::Webp,
        width,
        height,
        orientation,
        cmyk: false,
        adobe: false,
        // ANMF chunks, of a file with VP8X's animation flag or not: libwebp's
        // demuxer decides by the chunks, so the limits count them too.
        frames: frames.max(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_header(w: u32, h: u32) -> Vec<u8> {
        let mut d = b"\x89PNG\r\n\x1a\n".to_vec();
        d.extend_from_slice(&13u32.to_be_bytes());
        d.extend_from_slice(b"IHDR");
        d.extend_from_slice(&w.to_be_bytes());
        d.extend_from_slice(&h.to_be_bytes());
        d.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
        d
    }

    #[test]
    fn test_probe_png_header_only_bomb() {
        let p = probe(&png_header(60000, 60000)).unwrap();
        assert_eq!((p.width, p.height), (60000, 60000));
        assert_eq!(p.pixels(), 3_600_000_000);
    }

    #[test]
    fn test_probe_unknown_bytes_unsupported() {
        assert!(matches!(
            probe(b"hello world, not an image"),
            Err(ImagingError::UnsupportedFormat(_))
        ));
        assert!(matches!(probe(b""), Err(ImagingError::UnsupportedFormat(_))));
    }

    #[test]
    fn test_probe_truncated_headers_undecodable() {
        assert!(matches!(
            probe(&[0xFF, 0xD8, 0xFF]),
            Err(ImagingError::Undecodable(_))
        ));
        assert!(matches!(
            probe(&png_header(10, 10)[..18]),
            Err(ImagingError::Undecodable(_))
        ));
        assert!(matches!(
            probe(b"RIFF\0\0\0\0WEBPVP8 "),
            Err(ImagingError::Undecodable(_))
        ));
    }

    #[test]
    fn test_probe_jpeg_reads_sof_and_exif() {
        let tiff = exif::tiff_with_orientation(6);
        let mut d = vec![0xFF, 0xD8];
        d.extend_from_slice(&[0xFF, 0xE1]);
        d.extend_from_slice(&((2 + 6 + tiff.len()) as u16).to_be_bytes());
        d.extend_from_slice(b"Exif\0\0");
        d.extend_from_slice(&tiff);
        d.extend_from_slice(&[0xFF, 0xC0, 0, 17, 8, 0x04, 0xB0, 0x06, 0x40, 3]);
        d.extend_from_slice(&[0; 9]);
        let p = probe(&d).unwrap();
        assert_eq!((p.width, p.height, p.orientation), (1600, 1200, 6));
        assert_eq!(p.oriented_size(), (1200, 1600));
        assert!(!p.cmyk);
    }

    #[test]
    fn test_probe_webp_vp8x() {
        let mut d = b"RIFF\0\0\0\0WEBPVP8X".to_vec();
        d.extend_from_slice(&10u32.to_le_bytes());
        d.extend_from_slice(&[0x10, 0, 0, 0]);
        d.extend_from_slice(&[0x3f, 0x06, 0x00, 0xaf, 0x04, 0x00]);
        let p = probe(&d).unwrap();
        assert_eq!((p.width, p.height), (1600, 1200));
    }
}
