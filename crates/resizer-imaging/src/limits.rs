//! What is checked before any pixel exists: the limits, and the header probe
//! against them. Pure code, like [`crate::probe`] and [`crate::plan`]: the
//! API tier uses these three without the codecs (feature `codecs`).

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
