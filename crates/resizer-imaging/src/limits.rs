//! What is checked before any pixel exists: the limits, and the header probe
//! against them. Pure code, like [`crate::probe`] and [`crate::plan`]: the
//! API tier uses these three without the codecs (feature `codecs`).

use resizer_core::ImageFormat;
use resizer_core::params::{Frames, ResizeParams};

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
    /// Most frames an animated output may carry; with `max_input_pixels`
    /// bounding the sum of the frames' pixels.
    pub max_frames: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_input_pixels: 50_000_000,
            max_output_side: 8192,
            shrink_on_load: ShrinkOnLoad::Quality,
            max_frames: DEFAULT_MAX_FRAMES,
        }
    }
}

/// Default frame limit: ten seconds at 50 frames a second, more than the
/// animations people put on pages; the pixel sum usually binds first.
pub const DEFAULT_MAX_FRAMES: u32 = 500;

/// Whether the output keeps the input's animation: an animated input, every
/// frame asked for and an output format that animates.
pub fn animates(input: &Probe, params: &ResizeParams, format: ImageFormat) -> bool {
    input.frames > 1 && params.frames == Frames::All && format.animates()
}

/// The limits of an animated output, from the header and the plan: the
/// frame count, and the pixels of every frame together (each is composited
/// onto the whole canvas, and each output frame is kept until the encode)
/// against the same pixel limit as a still, input side and output side.
pub fn check_animation(input: &Probe, out_w: u32, out_h: u32, limits: &Limits) -> Result<(), ImagingError> {
    if input.frames > limits.max_frames {
        return Err(ImagingError::TooManyFrames {
            frames: input.frames,
            limit: limits.max_frames,
        });
    }
    let out = (u64::from(out_w) * u64::from(out_h)).saturating_mul(u64::from(input.frames));
    let pixels = input.animation_pixels().max(out);
    if pixels > limits.max_input_pixels {
        return Err(ImagingError::AnimationTooLarge {
            frames: input.frames,
            pixels,
            limit: limits.max_input_pixels,
        });
    }
    Ok(())
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
    if format == ImageFormat::Jxl && (width < 2 || height < 2) {
        // The encoder (zune-jpegxl) writes nothing narrower.
        return Err(ImagingError::InvalidRequest(
            "a JPEG XL output needs at least 2 pixels on each side",
        ));
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

    fn gif(width: u32, height: u32, frames: u32) -> Probe {
        Probe {
            format: ImageFormat::Gif,
            width,
            height,
            orientation: 1,
            cmyk: false,
            adobe: false,
            frames,
        }
    }

    #[test]
    fn test_animation_limits_count_frames_and_their_pixel_sum() {
        let limits = Limits::default();
        assert!(check_animation(&gif(1, 1, 500), 1, 1, &limits).is_ok());
        assert!(matches!(
            check_animation(&gif(1, 1, 10_000), 1, 1, &limits),
            Err(ImagingError::TooManyFrames {
                frames: 10_000,
                limit: 500
            })
        ));
        // 400 frames of 500×500 are 100 M pixels: each is fine, together not.
        assert!(matches!(
            check_animation(&gif(500, 500, 400), 50, 50, &limits),
            Err(ImagingError::AnimationTooLarge {
                pixels: 100_000_000,
                ..
            })
        ));
        assert!(check_animation(&gif(500, 500, 200), 500, 500, &limits).is_ok());
        // Enlarged, the output frames are what would not fit.
        assert!(matches!(
            check_animation(&gif(500, 500, 200), 1000, 1000, &limits),
            Err(ImagingError::AnimationTooLarge {
                pixels: 200_000_000,
                ..
            })
        ));
    }

    #[test]
    fn test_only_animated_inputs_to_animating_formats_with_every_frame_animate() {
        let all = ResizeParams::width(10);
        let first = ResizeParams {
            frames: Frames::First,
            ..all.clone()
        };
        let moving = gif(10, 10, 3);
        assert!(animates(&moving, &all, ImageFormat::Gif));
        assert!(animates(&moving, &all, ImageFormat::Webp));
        assert!(!animates(&moving, &all, ImageFormat::Avif));
        assert!(!animates(&moving, &all, ImageFormat::Jpeg));
        assert!(!animates(&moving, &first, ImageFormat::Gif));
        assert!(!animates(&gif(10, 10, 1), &all, ImageFormat::Gif));
    }
}
