//! AVIF and HEIC through libheif (built from the crate's vendored sources,
//! with dav1d and libaom for AV1 and libde265 for HEVC; see ADR 0010).
//!
//! Every call gets its own context with security limits tightened to the
//! job's: the pixel limit the probe checked, a cap on tiles and on memory, one
//! thread (the worker pool is the parallelism; a codec that spawns threads
//! would also escape the job's CPU budget). libheif applies the item's
//! rotation, mirroring and crop, and converts the YCbCr of an `nclx` colour
//! box to sRGB; an ICC profile is left to [`crate::color`], as for JPEG.

use std::ffi::CStr;
use std::ptr;
use std::sync::Once;

use libheif_sys as lh;

use crate::decode::Pixels;
use crate::error::ImagingError;

/// Most grid tiles in one image: an iPhone's 48 MP photo is 192 tiles of 512².
pub const MAX_TILES: u64 = 1024;
/// AVIF encoder speed (libaom `cpu-used`, 0 slowest–9 fastest), chosen by
/// measurement (ADR 0010).
pub const AVIF_SPEED: i32 = 6;
/// AVIF quality when the request gives none (libheif's 0–100 scale).
pub const DEFAULT_AVIF_QUALITY: u8 = 55;

static INIT: Once = Once::new();

fn init() {
    // Registers the built-in codecs; plugin loading is compiled out.
    INIT.call_once(|| unsafe {
        lh::heif_init(ptr::null_mut());
    });
}

/// Converts a libheif status of an encode step; `what` says which step failed.
fn check(e: lh::heif_error, what: &str) -> Result<(), ImagingError> {
    if e.code == lh::heif_error_code_heif_error_Ok {
        return Ok(());
    }
    // SAFETY: libheif's message is always a valid NUL-terminated string.
    let message = unsafe { CStr::from_ptr(e.message) }.to_string_lossy();
    Err(ImagingError::Internal(format!("{what}: {message}")))
}

/// Converts a libheif status of a decode step: whatever libheif refuses in a
/// file it was given (a zero size, a limit, a broken box, even an
/// "allocation error" that is a size check) is the file's fault, a 422.
fn check_input(e: lh::heif_error, what: &str) -> Result<(), ImagingError> {
    check(e, what).map_err(|e| match e {
        ImagingError::Internal(text) => ImagingError::Undecodable(text),
        other => other,
    })
}

/// Owns a context and whatever hangs off it, released in reverse order.
struct Context {
    ctx: *mut lh::heif_context,
    handle: *mut lh::heif_image_handle,
    image: *mut lh::heif_image,
}

impl Context {
    fn new(max_pixels: u64) -> Result<Self, ImagingError> {
        init();
        // SAFETY: a fresh context; the limits pointer it returns lives as long as it.
        unsafe {
            let ctx = lh::heif_context_alloc();
            if ctx.is_null() {
                return Err(ImagingError::Internal("libheif: no context".into()));
            }
            let this = Self {
                ctx,
                handle: ptr::null_mut(),
                image: ptr::null_mut(),
            };
            let limits = lh::heif_context_get_security_limits(ctx);
            if let Some(limits) = limits.as_mut() {
                limits.max_image_size_pixels = max_pixels.max(1);
                limits.max_number_of_tiles = MAX_TILES;
                // Decoded YUV, its RGB(A) conversion and the codec's frames.
                limits.max_total_memory = max_pixels.saturating_mul(12).saturating_add(64 << 20);
            }
            lh::heif_context_set_max_decoding_threads(ctx, 0);
            Ok(this)
        }
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: each pointer is null or owned by this struct.
        unsafe {
            if !self.image.is_null() {
                lh::heif_image_release(self.image);
            }
            if !self.handle.is_null() {
                lh::heif_image_handle_release(self.handle);
            }
            lh::heif_context_free(self.ctx);
        }
    }
}

/// Decodes the primary image of an AVIF or HEIC file to 8-bit RGB or RGBA
/// (10- and 12-bit are reduced by libheif). `max_pixels` bounds every image
/// libheif builds, tiles and grid alike.
pub fn decode(data: &[u8], max_pixels: u64) -> Result<Pixels, ImagingError> {
    let mut c = Context::new(max_pixels)?;
    // SAFETY: `data` outlives the context (dropped at the end of this function),
    // as `without_copy` requires; every out-pointer is checked by `check`.
    unsafe {
        let e = lh::heif_context_read_from_memory_without_copy(
            c.ctx,
            data.as_ptr().cast(),
            data.len(),
            ptr::null(),
        );
        check_input(e, "reading the HEIF structure")?;
        check_input(
            lh::heif_context_get_primary_image_handle(c.ctx, &mut c.handle),
            "finding the primary image",
        )?;
        let alpha = lh::heif_image_handle_has_alpha_channel(c.handle) != 0;
        let (chroma, channels) = if alpha {
            (lh::heif_chroma_heif_chroma_interleaved_RGBA, 4u8)
        } else {
            (lh::heif_chroma_heif_chroma_interleaved_RGB, 3u8)
        };
        let options = lh::heif_decoding_options_alloc();
        if let Some(o) = options.as_mut() {
            o.convert_hdr_to_8bit = 1;
            o.num_codec_threads = 1;
            o.strict_decoding = 1;
        }
        let e = lh::heif_decode_image(
            c.handle,
            &mut c.image,
            lh::heif_colorspace_heif_colorspace_RGB,
            chroma,
            options,
        );
        lh::heif_decoding_options_free(options);
        check_input(e, "decoding")?;
        copy_out(c.image, channels)
    }
}

/// Copies a decoded interleaved image out of libheif, row by row.
///
/// # Safety
/// `image` is a live image libheif decoded with `channels` interleaved samples.
unsafe fn copy_out(image: *const lh::heif_image, channels: u8) -> Result<Pixels, ImagingError> {
    let none = || ImagingError::Undecodable("libheif returned no image".into());
    let channel = lh::heif_channel_heif_channel_interleaved;
    // SAFETY: per the function's contract; rows are read within `stride × h`.
    unsafe {
        let width = lh::heif_image_get_width(image, channel);
        let height = lh::heif_image_get_height(image, channel);
        let mut stride = 0usize;
        let plane = lh::heif_image_get_plane_readonly2(image, channel, &mut stride);
        let (Ok(w), Ok(h)) = (usize::try_from(width), usize::try_from(height)) else {
            return Err(none());
        };
        let row = w * usize::from(channels);
        if plane.is_null() || w == 0 || h == 0 || stride < row {
            return Err(none());
        }
        let mut out = Vec::with_capacity(row * h);
        for y in 0..h {
            out.extend_from_slice(std::slice::from_raw_parts(plane.add(y * stride), row));
        }
        Ok(Pixels {
            data: out,
            width: w as u32,
            height: h as u32,
            channels,
        })
    }
}

/// Appends what libheif writes to the `Vec<u8>` behind `userdata`.
unsafe extern "C" fn write_to_vec(
    _ctx: *mut lh::heif_context,
    data: *const libc::c_void,
    size: usize,
    userdata: *mut libc::c_void,
) -> lh::heif_error {
    // SAFETY: `encode_avif` passes a live `&mut Vec<u8>`, and libheif a valid buffer.
    unsafe {
        let out = &mut *userdata.cast::<Vec<u8>>();
        out.extend_from_slice(std::slice::from_raw_parts(data.cast::<u8>(), size));
    }
    lh::heif_error {
        code: lh::heif_error_code_heif_error_Ok,
        subcode: lh::heif_suberror_code_heif_suberror_Unspecified,
        message: c"ok".as_ptr(),
    }
}

/// Encodes RGB or RGBA pixels as AVIF (libaom, 4:2:0, one thread).
pub fn encode_avif(pixels: &Pixels, quality: u8, speed: i32) -> Result<Vec<u8>, ImagingError> {
    let (w, h) = (pixels.width as usize, pixels.height as usize);
    let channels = usize::from(pixels.channels);
    let chroma = match pixels.channels {
        3 => lh::heif_chroma_heif_chroma_interleaved_RGB,
        4 => lh::heif_chroma_heif_chroma_interleaved_RGBA,
        n => {
            return Err(ImagingError::Internal(format!(
                "cannot encode {n} channels as AVIF"
            )));
        }
    };
    let mut c = Context::new(pixels.width as u64 * pixels.height as u64)?;
    let mut encoder: *mut lh::heif_encoder = ptr::null_mut();
    // SAFETY: every handle is checked before use and released on every path.
    unsafe {
        let e = lh::heif_image_create(
            w as i32,
            h as i32,
            lh::heif_colorspace_heif_colorspace_RGB,
            chroma,
            &mut c.image,
        );
        check(e, "creating the image")?;
        let channel = lh::heif_channel_heif_channel_interleaved;
        check(
            lh::heif_image_add_plane(c.image, channel, w as i32, h as i32, 8),
            "adding a plane",
        )?;
        let mut stride = 0usize;
        let plane = lh::heif_image_get_plane2(c.image, channel, &mut stride);
        let row = w * channels;
        if plane.is_null() || stride < row {
            return Err(ImagingError::Internal("libheif gave no plane to fill".into()));
        }
        for (y, src) in pixels.data.chunks_exact(row).enumerate().take(h) {
            ptr::copy_nonoverlapping(src.as_ptr(), plane.add(y * stride), row);
        }
        check(
            lh::heif_context_get_encoder_for_format(
                c.ctx,
                lh::heif_compression_format_heif_compression_AV1,
                &mut encoder,
            ),
            "finding the AV1 encoder",
        )?;
        let result = configure_and_encode(&mut c, encoder, quality, speed);
        lh::heif_encoder_release(encoder);
        result
    }
}

/// # Safety
/// `encoder` is a live libheif encoder and `c.image` a filled image.
unsafe fn configure_and_encode(
    c: &mut Context,
    encoder: *mut lh::heif_encoder,
    quality: u8,
    speed: i32,
) -> Result<Vec<u8>, ImagingError> {
    // SAFETY: per the function's contract.
    unsafe {
        check(
            lh::heif_encoder_set_lossy_quality(encoder, i32::from(quality)),
            "setting quality",
        )?;
        check(
            lh::heif_encoder_set_parameter_integer(encoder, c"speed".as_ptr(), speed),
            "setting speed",
        )?;
        check(
            lh::heif_encoder_set_parameter_integer(encoder, c"threads".as_ptr(), 1),
            "setting threads",
        )?;
        check(
            lh::heif_encoder_set_parameter_string(encoder, c"chroma".as_ptr(), c"420".as_ptr()),
            "setting chroma",
        )?;
        let e = lh::heif_context_encode_image(c.ctx, c.image, encoder, ptr::null(), ptr::null_mut());
        check(e, "encoding")?;
        let mut out: Vec<u8> = Vec::new();
        let mut writer = lh::heif_writer {
            writer_api_version: 1,
            write: Some(write_to_vec),
        };
        let e = lh::heif_context_write(c.ctx, &mut writer, (&mut out as *mut Vec<u8>).cast());
        check(e, "writing")?;
        Ok(out)
    }
}

/// Whether an HEVC encoder is linked in. It must not be: the only free one,
/// x265, is GPL (tested, so a build machine with `libx265-dev` installed is
/// caught before it ships).
pub fn links_hevc_encoder() -> bool {
    init();
    // SAFETY: a pure query.
    unsafe { lh::heif_have_encoder_for_format(lh::heif_compression_format_heif_compression_HEVC) != 0 }
}

/// Whether AV1 decoding, AV1 encoding and HEVC decoding are all available.
pub fn codecs_present() -> bool {
    init();
    // SAFETY: pure queries.
    unsafe {
        lh::heif_have_decoder_for_format(lh::heif_compression_format_heif_compression_AV1) != 0
            && lh::heif_have_encoder_for_format(lh::heif_compression_format_heif_compression_AV1) != 0
            && lh::heif_have_decoder_for_format(lh::heif_compression_format_heif_compression_HEVC) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_codecs_linked_and_no_gpl_encoder() {
        assert!(codecs_present(), "libheif was built without dav1d/aom/libde265");
        assert!(!links_hevc_encoder(), "an HEVC encoder (x265, GPL) was linked in");
    }

    fn gradient(w: u32, h: u32, channels: u8) -> Pixels {
        let mut data = Vec::new();
        for y in 0..h {
            for x in 0..w {
                data.extend_from_slice(&[(x * 255 / w) as u8, (y * 255 / h) as u8, 128]);
                if channels == 4 {
                    data.push(if x < w / 2 { 255 } else { 64 });
                }
            }
        }
        Pixels {
            data,
            width: w,
            height: h,
            channels,
        }
    }

    #[test]
    fn test_avif_round_trip_keeps_size_colour_and_alpha() {
        for channels in [3, 4] {
            let src = gradient(96, 64, channels);
            let avif = encode_avif(&src, 80, AVIF_SPEED).unwrap();
            let back = decode(&avif, 1 << 20).unwrap();
            assert_eq!((back.width, back.height, back.channels), (96, 64, channels));
            let worst = src
                .data
                .iter()
                .zip(&back.data)
                .map(|(a, b)| a.abs_diff(*b))
                .max()
                .unwrap();
            assert!(worst < 24, "{channels} channels: worst sample error {worst}");
        }
    }

    #[test]
    fn test_decode_respects_the_pixel_limit_and_refuses_garbage() {
        let avif = encode_avif(&gradient(64, 64, 3), 50, AVIF_SPEED).unwrap();
        assert!(matches!(
            decode(&avif, 64 * 63),
            Err(ImagingError::Undecodable(_))
        ));
        for n in [0, 12, 40, avif.len() / 2, avif.len() - 1] {
            assert!(decode(&avif[..n], 1 << 20).is_err(), "{n} bytes");
        }
    }
}
