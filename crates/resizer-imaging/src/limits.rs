//! What is checked before any pixel exists: the limits, and the header probe
//! against them. Pure code, like [`crate::probe`] and [`crate::plan`]: the
//! API tier uses these three without the codecs (feature `codecs`).

use resizer_core::ImageFormat;

use crate::error::ImagingError;
use crate::probe::{Probe, probe};

/// How far shrink-on-load (JPEG DCT scaling, libwebp's rescaler) may go
/// before the Lanczos resampler takes over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShrinkOnLoad {
    /// Leave the resampler a shrink of at least 2 (Pillow's `thumbnail()`
    /// default): decoding at the target size would alias, and the quality
    /// guard holds us to Pillow-SIMD's SSIM.
    #[default]
    Quality,
    /// Decode at the smallest scale that still covers the output, as sharp
    /// does by default (`fastShrinkOnLoad`): about a fifth faster on photos
    /// shrunk 4× or more, mean SSIM about 0.003 lower (docs/benchmarks.md).
    Fast,
}

impl ShrinkOnLoad {
    /// How much smaller than the decoded image the output must still be.
    pub fn reducing_gap(self) -> f64 {
        match self {
            Self::Quality => 2.0,
            Self::Fast => 1.0,
        }
    }
}

/// Limits enforced before and during a resize, and how much detail
/// shrink-on-load may give up for speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest input, in pixels, read from the header before decoding.
    pub max_input_pixels: u64,
    /// Largest output side, in pixels.
    pub max_output_side: u32,
    /// How far the decoder may shrink before resampling.
    pub shrink_on_load: ShrinkOnLoad,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_input_pixels: 50_000_000,
            max_output_side: 8192,
            shrink_on_load: ShrinkOnLoad::Quality,
        }
    }
}

/// Probes the header and applies the input limits; no pixel is decoded.
pub fn check(data: &[u8], limits: &Limits) -> Result<Probe, ImagingError> {
    let p = probe(data)?;
    if p.pixels() > limits.max_input_pixels {
        return Err(ImagingError::TooManyPixels {
            width: p.width,
            height: p.height,
            pixels: p.pixels(),
            limit: limits.max_input_pixels,
        });
    }
    Ok(p)
}

/// Most pixels one AVIF output may have. The encoder cannot be stopped
/// midway, and at its speed (ADR 0010) 16 MP is a few seconds of one core;
/// a larger AVIF is refused before any decode.
pub const MAX_AVIF_OUTPUT_PIXELS: u64 = 16 << 20;

/// Applies the limits of the output format to a planned output size.
pub fn check_output(format: ImageFormat, width: u32, height: u32) -> Result<(), ImagingError> {
    let pixels = u64::from(width) * u64::from(height);
    if format == ImageFormat::Avif && pixels > MAX_AVIF_OUTPUT_PIXELS {
        return Err(ImagingError::FormatTooLarge {
            format,
            pixels,
            limit: MAX_AVIF_OUTPUT_PIXELS,
        });
    }
    Ok(())
}

#[cfg(test)]
mod output_tests {
    use super::*;

    #[test]
    fn test_avif_output_is_bounded_and_others_are_not() {
        assert!(check_output(ImageFormat::Avif, 4096, 4096).is_ok());
        assert!(check_output(ImageFormat::Avif, 4097, 4096).is_err());
        assert!(check_output(ImageFormat::Jpeg, 8192, 8192).is_ok());
    }
}
