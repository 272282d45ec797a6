//! One resize from bytes to bytes, with per-thread reusable codec state.

use fast_image_resize::images::Image;
use fast_image_resize::{Filter, FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use resizer_core::ImageFormat;
use resizer_core::params::ResizeParams;

use crate::animation;
use crate::decode::{self, Pixels};
use crate::encode;
use crate::error::ImagingError;
use crate::limits::{Limits, check};
use crate::orient;
use crate::plan::{Plan, plan};
use crate::probe::Probe;

/// The result of a resize.
#[derive(Debug, Clone)]
pub struct ResizeOutput {
    /// Encoded output.
    pub bytes: Vec<u8>,
    /// Output format.
    pub format: ImageFormat,
    /// Output width.
    pub width: u32,
    /// Output height.
    pub height: u32,
    /// What the input header said.
    pub input: Probe,
    /// Frames written: 1 for a still, more for an animation kept animated.
    pub frames: u32,
}

/// Codec state reused across jobs on one thread; not `Sync` on purpose.
///
/// The JPEG decoder is the exception: each JPEG gets a fresh one, because a
/// libjpeg-turbo handle keeps the last image's quantization and Huffman
/// tables, and a stream without its own would decode with another job's
/// (found by fuzzing; a handle costs microseconds against a decode's milliseconds).
pub struct Pipeline {
    compressor: turbojpeg::Compressor,
    resizer: Resizer,
    to_srgb: crate::color::ToSrgb,
    /// The last job's decode buffer, reused by the next (bounded by
    /// [`decode::MAX_REUSED_BUFFER`]).
    scratch: Vec<u8>,
    /// libaom's speed for AVIF outputs.
    avif_speed: i32,
}

impl Pipeline {
    /// Creates the per-thread state.
    pub fn try_new() -> Result<Self, ImagingError> {
        Ok(Self {
            compressor: turbojpeg::Compressor::new().map_err(|e| ImagingError::Internal(e.to_string()))?,
            resizer: Resizer::new(),
            to_srgb: crate::color::ToSrgb::default(),
            scratch: Vec::new(),
            avif_speed: crate::heif::AVIF_SPEED,
        })
    }

    /// Sets the AVIF encoder's speed (libaom `cpu-used`, 0–9; benchmarks).
    pub fn set_avif_speed(&mut self, speed: i32) {
        self.avif_speed = speed.clamp(0, 9);
    }

    /// Resizes `data` according to `params` into `format`.
    pub fn run(
        &mut self,
        data: &[u8],
        params: &ResizeParams,
        format: ImageFormat,
        limits: &Limits,
    ) -> Result<ResizeOutput, ImagingError> {
        self.run_until(data, params, format, limits, None)
    }

    /// Like [`Pipeline::run`], stopping between stages once `deadline` has
    /// passed: a job whose answer nobody waits for any more stops using the
    /// thread. Each stage is bounded on its own (pixels by the header check,
    /// JPEG scans by [`decode::MAX_JPEG_SCANS`]), so the work done past the
    /// deadline is at most one stage.
    pub fn run_until(
        &mut self,
        data: &[u8],
        params: &ResizeParams,
        format: ImageFormat,
        limits: &Limits,
        deadline: Option<std::time::Instant>,
    ) -> Result<ResizeOutput, ImagingError> {
        let due = |after: &'static str| match deadline {
            Some(d) if std::time::Instant::now() >= d => Err(ImagingError::OverBudget(after)),
            _ => Ok(()),
        };
        due("queueing")?;
        let input = check(data, limits)?;
        let (ow, oh) = input.oriented_size();
        let plan = plan(ow, oh, params, limits.max_output_side)?;
        crate::limits::check_output(format, plan.out_w, plan.out_h)?;
        if crate::limits::animates(&input, params, format) {
            crate::limits::check_animation(&input, plan.out_w, plan.out_h, limits)?;
            return self.run_animated(data, input, &plan, format, params.quality, limits, &due);
        }
        let mut decompressor =
            turbojpeg::Decompressor::new().map_err(|e| ImagingError::Internal(e.to_string()))?;
        let mut decoded = decode::decode(
            &mut decompressor,
            data,
            &input,
            plan.shrink(),
            limits.shrink_on_load,
            limits.max_input_pixels,
            std::mem::take(&mut self.scratch),
        )?;
        due("decoding")?;
        if let Some(profile) = crate::color::embedded_profile(data, input.format) {
            self.to_srgb.apply(&mut decoded, &profile)?;
        }
        let oriented = orient::apply(decoded, input.orientation);
        due("colour and orientation")?;
        let resized = self.resize(oriented, &plan, ow, oh)?;
        due("resampling")?;
        let (width, height) = (resized.width, resized.height);
        let bytes = self.encode(resized, format, params.quality)?;
        Ok(ResizeOutput {
            bytes,
            format,
            width,
            height,
            input,
            frames: 1,
        })
    }

    /// Encodes a still; a failed JPEG encode leaves no state to the next job.
    fn encode(
        &mut self,
        pixels: Pixels,
        format: ImageFormat,
        quality: Option<u8>,
    ) -> Result<Vec<u8>, ImagingError> {
        encode::encode(&mut self.compressor, pixels, format, quality, self.avif_speed).inspect_err(|_| {
            if let Ok(fresh) = turbojpeg::Compressor::new() {
                self.compressor = fresh;
            }
        })
    }

    /// Every frame of an animation through the still's stages (colour,
    /// orientation, resampling with the same plan), then one animated encode.
    #[allow(clippy::too_many_arguments)]
    fn run_animated(
        &mut self,
        data: &[u8],
        input: Probe,
        plan: &Plan,
        format: ImageFormat,
        quality: Option<u8>,
        limits: &Limits,
        due: &dyn Fn(&'static str) -> Result<(), ImagingError>,
    ) -> Result<ResizeOutput, ImagingError> {
        let profile = crate::color::embedded_profile(data, input.format);
        let (ow, oh) = input.oriented_size();
        let mut resized = Vec::with_capacity(input.frames as usize);
        let plays = animation::frames(data, &input, limits.max_input_pixels, &mut |frame| {
            due("decoding a frame")?;
            let mut pixels = frame.pixels;
            if let Some(p) = &profile {
                self.to_srgb.apply(&mut pixels, p)?;
            }
            let oriented = orient::apply(pixels, input.orientation);
            resized.push(animation::Frame {
                pixels: self.resize(oriented, plan, ow, oh)?,
                duration_ms: frame.duration_ms,
            });
            Ok(())
        })?;
        let quality = quality.unwrap_or(encode::DEFAULT_QUALITY);
        let frames = resized.len() as u32;
        let bytes = animation::encode(resized, plays, format, quality, &|| due("encoding a frame"))?;
        Ok(ResizeOutput {
            bytes,
            format,
            width: plan.out_w,
            height: plan.out_h,
            input,
            frames,
        })
    }

    /// Resamples the plan's source region to the output size. The decoded image
    /// may be smaller than the displayed size (shrink-on-load), so the crop box
    /// is rescaled to it first.
    fn resize(&mut self, src: Pixels, plan: &Plan, ow: u32, oh: u32) -> Result<Pixels, ImagingError> {
        let (sw, sh) = (f64::from(src.width), f64::from(src.height));
        let (fx, fy) = (sw / f64::from(ow), sh / f64::from(oh));
        // Scaled to a shrunk-on-load decode, 174 × (44/174) can come out a hair
        // above 44: the resampler refuses a crop past the edge, which was a 500
        // (found by the `pipeline_webp` fuzz target). Clamp into the image.
        let crop_x = (plan.crop_x * fx).clamp(0.0, sw);
        let crop_y = (plan.crop_y * fy).clamp(0.0, sh);
        let scaled = Plan {
            crop_x,
            crop_y,
            crop_w: (plan.crop_w * fx).min(sw - crop_x),
            crop_h: (plan.crop_h * fy).min(sh - crop_y),
            ..*plan
        };
        if scaled.is_identity(src.width, src.height) {
            return Ok(src);
        }
        let pixel_type = match src.channels {
            3 => PixelType::U8x3,
            4 => PixelType::U8x4,
            n => return Err(ImagingError::Internal(format!("unexpected channel count {n}"))),
        };
        let channels = src.channels;
        let src_image = Image::from_vec_u8(src.width, src.height, src.data, pixel_type)
            .map_err(|e| ImagingError::Internal(e.to_string()))?;
        let mut dst = Image::new(plan.out_w, plan.out_h, pixel_type);
        let options = ResizeOptions::new()
            .resize_alg(ResizeAlg::Convolution(lanczos3()))
            .crop(scaled.crop_x, scaled.crop_y, scaled.crop_w, scaled.crop_h);
        self.resizer
            .resize(&src_image, &mut dst, &options)
            .map_err(|e| ImagingError::Internal(e.to_string()))?;
        let spent = src_image.into_vec();
        if spent.capacity() <= decode::MAX_REUSED_BUFFER {
            self.scratch = spent;
        }
        Ok(Pixels {
            data: dst.into_vec(),
            width: plan.out_w,
            height: plan.out_h,
            channels,
        })
    }
}

/// Lanczos3, the same kernel as `FilterType::Lanczos3`, with one sine per tap
/// instead of two: `sin(πx) = 3s − 4s³` where `s = sin(πx/3)`. The kernel is
/// evaluated for every tap of every output row and column on each resize, and
/// libm's sine was ~3 % of a fit-320 JPEG resize (perf, `examples/bench`).
fn lanczos3_kernel(x: f64) -> f64 {
    if x == 0.0 {
        return 1.0;
    }
    if !(-3.0..3.0).contains(&x) {
        return 0.0;
    }
    let t = x * std::f64::consts::FRAC_PI_3;
    let s = t.sin();
    // sinc(x) · sinc(x/3) = sin(3t)/(3t) · sin(t)/t
    s * s * (3.0 - 4.0 * s * s) / (3.0 * t * t)
}

fn lanczos3() -> FilterType {
    // Support 3 is finite and positive, which is all `Filter::new` checks.
    FilterType::Custom(Filter::new("Lanczos3", lanczos3_kernel, 3.0).expect("valid support"))
}

#[cfg(test)]
mod filter_tests {
    use super::lanczos3_kernel;

    /// The textbook definition, as fast_image_resize and Pillow write it.
    fn reference(x: f64) -> f64 {
        let sinc = |v: f64| {
            if v == 0.0 {
                1.0
            } else {
                (v * std::f64::consts::PI).sin() / (v * std::f64::consts::PI)
            }
        };
        if (-3.0..3.0).contains(&x) {
            sinc(x) * sinc(x / 3.0)
        } else {
            0.0
        }
    }

    #[test]
    fn test_one_sine_lanczos3_matches_the_definition() {
        for i in -4000..=4000 {
            let x = f64::from(i) / 1000.0 + 0.000_37;
            let (a, b) = (lanczos3_kernel(x), reference(x));
            assert!((a - b).abs() < 1e-12, "x={x}: {a} vs {b}");
        }
        assert_eq!(lanczos3_kernel(0.0), 1.0);
        assert_eq!(lanczos3_kernel(3.0), 0.0);
        assert_eq!(lanczos3_kernel(-3.5), 0.0);
    }
}
