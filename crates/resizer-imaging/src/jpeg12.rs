//! The raw TurboJPEG 3 calls the `turbojpeg` crate does not make: 12-bit
//! JPEGs (medical and some camera pipelines), decoded by libjpeg-turbo 3's
//! 12-bit path and reduced to 8 bits, with the same scan limit and
//! shrink-on-load as 8-bit ones; and 8-bit JPEGs whose header carries a
//! harmless warning (the crate refuses every warning, and reads the header
//! again inside each decode). Which warnings are harmless: [`HARMLESS_WARNINGS`].

use turbojpeg::raw;

use crate::decode::{MAX_JPEG_SCANS, Pixels, jpeg_scale_eighths};
use crate::error::ImagingError;

/// The sample precision of the first frame header, if one is found before the scan.
pub fn precision(d: &[u8]) -> Option<u8> {
    let mut pos = 2;
    while pos + 4 <= d.len() && d[pos] == 0xFF {
        let marker = d[pos + 1];
        if marker == 0xFF || marker == 0x01 || (0xD0..=0xD7).contains(&marker) {
            pos += if marker == 0xFF { 1 } else { 2 };
            continue;
        }
        if marker == 0xDA || marker == 0xD9 {
            return None;
        }
        if matches!(marker, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF) {
            return d.get(pos + 4).copied();
        }
        pos += 2 + usize::from(u16::from_be_bytes([d[pos + 2], d[pos + 3]]));
    }
    None
}

/// Owns a TurboJPEG 3 decompressor handle.
struct Handle(raw::tjhandle);

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: created by tj3Init, destroyed once.
        unsafe { raw::tj3Destroy(self.0) }
    }
}

impl Handle {
    fn error(&self) -> ImagingError {
        // SAFETY: a live handle; TurboJPEG keeps the message until the next call.
        let msg = unsafe { std::ffi::CStr::from_ptr(raw::tj3GetErrorStr(self.0)) };
        ImagingError::Undecodable(msg.to_string_lossy().into_owned())
    }

    /// Success, or a warning that lost no image data; every error and every
    /// other warning is the file's.
    fn ok(&self, status: libc::c_int) -> Result<(), ImagingError> {
        if status == 0 {
            return Ok(());
        }
        // SAFETY: a live handle.
        let warning = unsafe { raw::tj3GetErrorCode(self.0) } == raw::TJERR_TJERR_WARNING as libc::c_int;
        match self.error() {
            ImagingError::Undecodable(m) if warning && is_harmless(&m) => Ok(()),
            e => Err(e),
        }
    }

    fn open() -> Result<Self, ImagingError> {
        // SAFETY: tj3Init returns a fresh handle or null.
        let h = unsafe { raw::tj3Init(raw::TJINIT_TJINIT_DECOMPRESS as libc::c_int) };
        if h.is_null() {
            return Err(ImagingError::Internal("TurboJPEG: no handle".into()));
        }
        let h = Handle(h);
        // SAFETY: a live handle.
        h.ok(unsafe {
            raw::tj3Set(
                h.0,
                raw::TJPARAM_TJPARAM_SCANLIMIT as libc::c_int,
                MAX_JPEG_SCANS as libc::c_int,
            )
        })?;
        Ok(h)
    }
}

/// libjpeg's warnings that lose no image data: the decode goes on to the
/// end, and browsers show these files. Every other warning (a truncated
/// file, a bad Huffman code, a lost restart marker: grey or smeared blocks)
/// and every error is the file's, 422. TurboJPEG keeps the last warning's
/// message; it reports one only after a complete decode (we never set
/// `TJPARAM_STOPONWARNING`).
pub const HARMLESS_WARNINGS: [&str; 4] = [
    "extraneous bytes before marker",
    "Unknown Adobe color transform code",
    "Inconsistent progression sequence",
    "Invalid SOS parameters for sequential JPEG",
];

/// Whether a TurboJPEG message is one of [`HARMLESS_WARNINGS`].
pub fn is_harmless(message: &str) -> bool {
    HARMLESS_WARNINGS.iter().any(|w| message.contains(w))
}

/// Decodes an 8-bit JPEG whole, to RGB or CMYK (`bpp` 3 or 4), past
/// [`HARMLESS_WARNINGS`]; the frame must be the probed `width`×`height`.
pub fn decode8_whole(data: &[u8], width: u32, height: u32, cmyk: bool) -> Result<Vec<u8>, ImagingError> {
    let h = Handle::open()?;
    let (format, bpp) = if cmyk {
        (raw::TJPF_TJPF_CMYK, 4)
    } else {
        (raw::TJPF_TJPF_RGB, 3)
    };
    // SAFETY: a live handle; the buffer is sized for the probed frame, which
    // the header must match before the decode writes into it.
    unsafe {
        h.ok(raw::tj3DecompressHeader(
            h.0,
            data.as_ptr(),
            data.len() as raw::size_t,
        ))?;
        check_dimensions(&h, width, height)?;
        let mut out = vec![0u8; width as usize * height as usize * bpp];
        let pitch = (width as usize * bpp) as libc::c_int;
        h.ok(raw::tj3Decompress8(
            h.0,
            data.as_ptr(),
            data.len() as raw::size_t,
            out.as_mut_ptr(),
            pitch,
            format,
        ))?;
        Ok(out)
    }
}

/// The frame decoded must be the one probed (the limits were checked on it),
/// and not CMYK, which the 12-bit path does not convert.
///
/// # Safety
/// `h` holds a decompressor that has read the header.
unsafe fn check_header(h: &Handle, width: u32, height: u32) -> Result<(), ImagingError> {
    // SAFETY: per the function's contract.
    unsafe { check_dimensions(h, width, height)? };
    // SAFETY: per the function's contract.
    let get = |p: raw::TJPARAM| unsafe { raw::tj3Get(h.0, p as libc::c_int) };
    if get(raw::TJPARAM_TJPARAM_COLORSPACE) >= raw::TJCS_TJCS_CMYK as libc::c_int {
        return Err(ImagingError::UnsupportedFormat(
            "12-bit CMYK JPEG is not supported".into(),
        ));
    }
    Ok(())
}

/// # Safety
/// `h` holds a decompressor that has read the header.
unsafe fn check_dimensions(h: &Handle, width: u32, height: u32) -> Result<(), ImagingError> {
    // SAFETY: per the function's contract.
    let get = |p: raw::TJPARAM| unsafe { raw::tj3Get(h.0, p as libc::c_int) };
    if (
        get(raw::TJPARAM_TJPARAM_JPEGWIDTH),
        get(raw::TJPARAM_TJPARAM_JPEGHEIGHT),
    ) != (width as i32, height as i32)
    {
        return Err(ImagingError::Undecodable(
            "the JPEG frame header disagrees with the probed dimensions".into(),
        ));
    }
    Ok(())
}

/// Decodes a 12-bit JPEG to 8-bit RGB, at the largest DCT scale that still
/// leaves the resampler a shrink of `gap` (as for 8-bit JPEGs).
pub fn decode(data: &[u8], width: u32, height: u32, shrink: f64, gap: f64) -> Result<Pixels, ImagingError> {
    // SAFETY: one handle, checked after every call; the output buffer is
    // sized from the scaled header before the decode writes into it.
    unsafe {
        let h = Handle::open()?;
        h.ok(raw::tj3DecompressHeader(
            h.0,
            data.as_ptr(),
            data.len() as raw::size_t,
        ))?;
        check_header(&h, width, height)?;
        let m = jpeg_scale_eighths(shrink, gap) as libc::c_int;
        // TurboJPEG takes only its listed factors, in lowest terms (1/2, not 4/8).
        let g = [8, 4, 2, 1].into_iter().find(|g| m % g == 0).unwrap_or(1);
        let factor = raw::tjscalingfactor {
            num: m / g,
            denom: 8 / g,
        };
        h.ok(raw::tj3SetScalingFactor(h.0, factor))?;
        let scaled = |v: u32| ((v as i64 * i64::from(m) + 7) / 8) as usize;
        let (w, ht) = (scaled(width), scaled(height));
        let mut samples = vec![0i16; w * ht * 3];
        let pitch = (w * 3) as libc::c_int;
        let status = raw::tj3Decompress12(
            h.0,
            data.as_ptr(),
            data.len() as raw::size_t,
            samples.as_mut_ptr(),
            pitch,
            raw::TJPF_TJPF_RGB,
        );
        h.ok(status)?;
        Ok(Pixels {
            data: samples.iter().map(|&v| to_8bit(v)).collect(),
            width: w as u32,
            height: ht as u32,
            channels: 3,
        })
    }
}

/// 0–4095 to 0–255, rounded.
fn to_8bit(v: i16) -> u8 {
    ((i32::from(v).clamp(0, 4095) * 255 + 2047) / 4095) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_twelve_bit_samples_scale_to_eight() {
        assert_eq!(
            (
                to_8bit(0),
                to_8bit(4095),
                to_8bit(2048),
                to_8bit(-3),
                to_8bit(5000)
            ),
            (0, 255, 128, 0, 255)
        );
    }

    #[test]
    fn test_precision_reads_the_frame_header() {
        let mut d = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0, 0];
        d.extend_from_slice(&[0xFF, 0xC1, 0, 11, 12, 0, 8, 0, 8, 1, 1, 0x11, 0]);
        assert_eq!(precision(&d), Some(12));
        assert_eq!(precision(&[0xFF, 0xD8, 0xFF, 0xDA, 0, 2]), None);
        assert_eq!(precision(&d[..9]), None);
    }
}
