//! Pure resize geometry: which part of the source becomes which output size.
//!
//! All coordinates are in the displayed (already oriented) source space.

use resizer_core::params::{Fit, ResizeParams};

use crate::error::ImagingError;

/// The geometry of one resize.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// Left edge of the source region to use.
    pub crop_x: f64,
    /// Top edge of the source region to use.
    pub crop_y: f64,
    /// Width of the source region.
    pub crop_w: f64,
    /// Height of the source region.
    pub crop_h: f64,
    /// Output width.
    pub out_w: u32,
    /// Output height.
    pub out_h: u32,
}

impl Plan {
    /// Returns the smaller of the two shrink ratios (source region / output);
    /// above 1 means the image gets smaller.
    pub fn shrink(&self) -> f64 {
        (self.crop_w / f64::from(self.out_w)).min(self.crop_h / f64::from(self.out_h))
    }

    /// Returns whether the plan is a plain copy of the whole source.
    pub fn is_identity(&self, src_w: u32, src_h: u32) -> bool {
        self.crop_x == 0.0
            && self.crop_y == 0.0
            && self.out_w == src_w
            && self.out_h == src_h
            && self.crop_w == f64::from(src_w)
            && self.crop_h == f64::from(src_h)
    }
}

fn side(v: f64) -> u64 {
    (v.round() as u64).max(1)
}

/// Computes the plan for a displayed source of `src_w`×`src_h`.
///
/// - `contain`: the largest size inside the box keeping the aspect ratio.
/// - `cover`: the box filled keeping the aspect ratio, the excess cropped equally on both sides.
/// - `fill`: exactly the box.
///
/// With one side given, all three behave like `contain`. Without `enlarge`
/// nothing is scaled up: `contain` stops at the source size; `cover` and
/// `fill` shrink the box by the same factor so it fits inside the source,
/// which keeps the requested aspect ratio.
pub fn plan(src_w: u32, src_h: u32, params: &ResizeParams, max_side: u32) -> Result<Plan, ImagingError> {
    // The API never lets these through; a worker still checks what the queue hands it
    // (a zero side planned a 0-pixel-wide output: found by the `job_descriptor` fuzz target).
    if params.width == Some(0) || params.height == Some(0) {
        return Err(ImagingError::InvalidRequest("a requested side is 0"));
    }
    if params.width.is_none() && params.height.is_none() {
        return Err(ImagingError::InvalidRequest("neither width nor height is given"));
    }
    let (sw, sh) = (f64::from(src_w), f64::from(src_h));
    let region = match (params.width, params.height, params.fit) {
        (Some(w), Some(h), Fit::Cover) => cover(sw, sh, f64::from(w), f64::from(h), params.enlarge),
        (Some(w), Some(h), Fit::Fill) => fill(sw, sh, f64::from(w), f64::from(h), params.enlarge),
        // contain, or any fit with a single side
        (w, h, _) => contain(src_w, src_h, w, h, params.enlarge)?,
    };
    let Region {
        crop_x,
        crop_y,
        crop_w,
        crop_h,
        out_w,
        out_h,
    } = region;
    if out_w > u64::from(max_side) || out_h > u64::from(max_side) {
        return Err(ImagingError::OutputTooLarge {
            width: out_w,
            height: out_h,
            limit: max_side,
        });
    }
    Ok(Plan {
        crop_x,
        crop_y,
        crop_w,
        crop_h,
        out_w: out_w as u32,
        out_h: out_h as u32,
    })
}

/// The source region read and the output size, before the output limit is checked.
struct Region {
    crop_x: f64,
    crop_y: f64,
    crop_w: f64,
    crop_h: f64,
    out_w: u64,
    out_h: u64,
}

/// The whole source into `out_w`×`out_h`.
fn whole(sw: f64, sh: f64, out_w: u64, out_h: u64) -> Region {
    Region {
        crop_x: 0.0,
        crop_y: 0.0,
        crop_w: sw,
        crop_h: sh,
        out_w,
        out_h,
    }
}

/// Fills `w`×`h`, cropping the centre of the overflowing side.
fn cover(sw: f64, sh: f64, w: f64, h: f64, enlarge: bool) -> Region {
    let mut scale = (w / sw).max(h / sh);
    let (mut bw, mut bh) = (w, h);
    if scale > 1.0 && !enlarge {
        bw = w / scale;
        bh = h / scale;
        scale = 1.0;
    }
    let (out_w, out_h) = (side(bw), side(bh));
    let cw = (out_w as f64 / scale).min(sw);
    let ch = (out_h as f64 / scale).min(sh);
    Region {
        crop_x: (sw - cw) / 2.0,
        crop_y: (sh - ch) / 2.0,
        crop_w: cw,
        crop_h: ch,
        out_w,
        out_h,
    }
}

/// Exactly `w`×`h`, stretched (never enlarged unless asked).
fn fill(sw: f64, sh: f64, w: f64, h: f64, enlarge: bool) -> Region {
    let f = if enlarge {
        1.0
    } else {
        (sw / w).min(sh / h).min(1.0)
    };
    whole(sw, sh, side(w * f), side(h * f))
}

/// Within `w`×`h` (either may be absent), keeping the aspect ratio.
fn contain(
    src_w: u32,
    src_h: u32,
    w_opt: Option<u32>,
    h_opt: Option<u32>,
    enlarge: bool,
) -> Result<Region, ImagingError> {
    let (sw, sh) = (f64::from(src_w), f64::from(src_h));
    let sx = w_opt.map(|w| f64::from(w) / sw);
    let sy = h_opt.map(|h| f64::from(h) / sh);
    let (scale, width_limits) = match (sx, sy) {
        (Some(x), Some(y)) => (x.min(y), x <= y),
        (Some(x), None) => (x, true),
        (None, Some(y)) => (y, false),
        (None, None) => return Err(ImagingError::Internal("plan needs width or height".into())),
    };
    Ok(if scale > 1.0 && !enlarge {
        whole(sw, sh, u64::from(src_w), u64::from(src_h))
    } else if width_limits {
        // The limiting side is exact; the other is rounded, so the aspect ratio is within one pixel.
        let w = u64::from(w_opt.unwrap_or(1));
        whole(sw, sh, w, side(sh * w as f64 / sw))
    } else {
        let h = u64::from(h_opt.unwrap_or(1));
        whole(sw, sh, side(sw * h as f64 / sh), h)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_a_zero_or_missing_side_is_refused_not_planned() {
        let mut p = ResizeParams::width(0);
        assert!(matches!(
            plan(4000, 3000, &p, 8192),
            Err(ImagingError::InvalidRequest(_))
        ));
        p.width = None;
        assert!(matches!(
            plan(4000, 3000, &p, 8192),
            Err(ImagingError::InvalidRequest(_))
        ));
        p.height = Some(0);
        p.fit = Fit::Cover;
        p.width = Some(10);
        assert!(matches!(
            plan(4000, 3000, &p, 8192),
            Err(ImagingError::InvalidRequest(_))
        ));
    }
    use resizer_core::params::FormatChoice;

    fn params(w: Option<u32>, h: Option<u32>, fit: Fit, enlarge: bool) -> ResizeParams {
        ResizeParams {
            width: w,
            height: h,
            fit,
            format: FormatChoice::Auto,
            quality: None,
            enlarge,
            frames: resizer_core::params::Frames::All,
        }
    }

    fn out(p: Plan) -> (u32, u32) {
        (p.out_w, p.out_h)
    }

    #[test]
    fn test_contain_fits_inside_box() {
        let p = plan(
            1600,
            1200,
            &params(Some(320), Some(320), Fit::Contain, false),
            8192,
        )
        .unwrap();
        assert_eq!(out(p), (320, 240));
        let p = plan(
            1200,
            1600,
            &params(Some(320), Some(320), Fit::Contain, false),
            8192,
        )
        .unwrap();
        assert_eq!(out(p), (240, 320));
        let p = plan(1600, 1200, &params(None, Some(600), Fit::Contain, false), 8192).unwrap();
        assert_eq!(out(p), (800, 600));
    }

    #[test]
    fn test_contain_never_enlarges_by_default() {
        let p = plan(100, 50, &params(Some(400), None, Fit::Contain, false), 8192).unwrap();
        assert_eq!(out(p), (100, 50));
        assert!(p.is_identity(100, 50));
        let p = plan(100, 50, &params(Some(400), None, Fit::Contain, true), 8192).unwrap();
        assert_eq!(out(p), (400, 200));
    }

    #[test]
    fn test_cover_crops_centre() {
        let p = plan(1600, 1200, &params(Some(300), Some(300), Fit::Cover, false), 8192).unwrap();
        assert_eq!(out(p), (300, 300));
        assert_eq!((p.crop_w, p.crop_h), (1200.0, 1200.0));
        assert_eq!((p.crop_x, p.crop_y), (200.0, 0.0));
    }

    #[test]
    fn test_cover_without_enlarge_keeps_box_aspect() {
        let p = plan(
            1000,
            500,
            &params(Some(2000), Some(2000), Fit::Cover, false),
            8192,
        )
        .unwrap();
        assert_eq!(out(p), (500, 500));
        assert_eq!((p.crop_x, p.crop_w), (250.0, 500.0));
    }

    #[test]
    fn test_fill_stretches() {
        let p = plan(1600, 1200, &params(Some(100), Some(300), Fit::Fill, false), 8192).unwrap();
        assert_eq!(out(p), (100, 300));
        assert_eq!((p.crop_w, p.crop_h), (1600.0, 1200.0));
        let p = plan(100, 100, &params(Some(400), Some(200), Fit::Fill, false), 8192).unwrap();
        assert_eq!(out(p), (100, 50));
    }

    #[test]
    fn test_output_limit_applies_to_computed_side() {
        let err = plan(10, 1000, &params(Some(100), None, Fit::Contain, true), 8192).unwrap_err();
        assert!(matches!(err, ImagingError::OutputTooLarge { height: 10000, .. }));
    }

    #[test]
    fn test_aspect_ratio_within_one_pixel_over_many_sizes() {
        for (sw, sh) in [(1600u32, 1200u32), (1199, 37), (3, 2000), (4000, 2999)] {
            for target in [1u32, 7, 99, 320, 1000] {
                for fit in [Fit::Contain, Fit::Cover] {
                    let p = plan(sw, sh, &params(Some(target), Some(target), fit, true), 100_000).unwrap();
                    if p.out_w == 1 || p.out_h == 1 {
                        continue; // a one-pixel side cannot carry the ratio
                    }
                    // One side is exact; the other is within a pixel of the ideal.
                    let ideal_h = f64::from(p.out_w) * p.crop_h / p.crop_w;
                    let ideal_w = f64::from(p.out_h) * p.crop_w / p.crop_h;
                    assert!(
                        (f64::from(p.out_h) - ideal_h).abs() <= 1.0
                            || (f64::from(p.out_w) - ideal_w).abs() <= 1.0,
                        "{sw}x{sh} -> {target} {fit:?}: {p:?}"
                    );
                }
            }
        }
    }
}
