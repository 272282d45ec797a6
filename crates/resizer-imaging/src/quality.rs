//! Quality scoring for the imaging benchmark and its guard test: a reference
//! made from the input by a full decode and Lanczos3 in floating point (never
//! re-encoded), and SSIM on luma (Gaussian window 11, σ 1.5; Wang et al. 2004).
//! Written here rather than taken from a crate: the maintained SSIM crate
//! (`dssim-core`) is AGPL, and the score needs ~100 lines.

use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use turbojpeg::PixelFormat;

/// Full-size RGB decode of an output JPEG.
pub fn decode_rgb(data: &[u8]) -> (Vec<u8>, usize, usize) {
    if crate::probe::sniff(data) == Some(resizer_core::ImageFormat::Avif) {
        let p = crate::heif::decode(data, u64::MAX).expect("an AVIF");
        let rgb = crate::encode::flatten_on_white(p);
        return (rgb.data, rgb.width as usize, rgb.height as usize);
    }
    let img = turbojpeg::decompress(data, PixelFormat::RGB).expect("a JPEG");
    let (w, h) = (img.width, img.height);
    let mut out = Vec::with_capacity(w * h * 3);
    for row in img.pixels.chunks(img.pitch).take(h) {
        out.extend_from_slice(&row[..w * 3]);
    }
    (out, w, h)
}

/// The benchmark's output size: `fit320` (within 320×320, never enlarged) or `half`.
pub fn target(task: &str, w: usize, h: usize) -> (usize, usize) {
    match task {
        "fit320" => {
            let s = (320.0 / w as f64).min(320.0 / h as f64).min(1.0);
            ((w as f64 * s).round() as usize, (h as f64 * s).round() as usize)
        }
        "half" => (
            (w as f64 / 2.0).round() as usize,
            (h as f64 / 2.0).round() as usize,
        ),
        other => panic!("unknown task {other}"),
    }
}

/// Full-size RGB decode of any supported input (JPEG, PNG, WebP; alpha dropped,
/// the corpus has none), through the pipeline's own decoders at scale 1.
pub fn decode_input(data: &[u8]) -> (Vec<u8>, usize, usize) {
    let limits = crate::Limits::default();
    let probe = crate::check(data, &limits).expect("a supported image");
    let mut jpeg = turbojpeg::Decompressor::new().unwrap();
    let px = crate::decode::decode(
        &mut jpeg,
        data,
        &probe,
        1.0,
        crate::decode::ShrinkOnLoad::Quality,
        limits.max_input_pixels,
        Vec::new(),
    )
    .expect("decodable");
    let channels = usize::from(px.channels);
    let rgb = px
        .data
        .chunks_exact(channels)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    (rgb, px.width as usize, px.height as usize)
}

/// Luma of the reference: full decode, Lanczos3 in f32, BT.601 weights.
pub fn reference_luma(input: &[u8], task: &str) -> (Vec<f32>, usize, usize) {
    let (rgb, w, h) = decode_input(input);
    let (tw, th) = target(task, w, h);
    let floats: Vec<u8> = rgb.iter().flat_map(|&v| f32::from(v).to_ne_bytes()).collect();
    let src = Image::from_vec_u8(w as u32, h as u32, floats, PixelType::F32x3).unwrap();
    let mut dst = Image::new(tw as u32, th as u32, PixelType::F32x3);
    Resizer::new()
        .resize(
            &src,
            &mut dst,
            &ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3)),
        )
        .unwrap();
    let px: Vec<f32> = dst
        .buffer()
        .chunks_exact(4)
        .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (luma(px.chunks_exact(3).map(|p| [p[0], p[1], p[2]])), tw, th)
}

/// BT.601 luma of RGB samples.
pub fn luma(px: impl Iterator<Item = [f32; 3]>) -> Vec<f32> {
    px.map(|[r, g, b]| 0.299 * r + 0.587 * g + 0.114 * b).collect()
}

/// Separable Gaussian blur (σ 1.5, radius 5), edges clamped.
fn blur(src: &[f32], w: usize, h: usize) -> Vec<f32> {
    let k: Vec<f32> = (-5i32..=5)
        .map(|i| (-(i * i) as f32 / (2.0 * 1.5 * 1.5)).exp())
        .collect();
    let sum: f32 = k.iter().sum();
    let k: Vec<f32> = k.iter().map(|v| v / sum).collect();
    let rows = blur_pass(src, w, h, &k, |y, x| (y * w, x, 1, w));
    blur_pass(&rows, w, h, &k, |y, x| (x, y, w, h))
}

/// One 1-D pass: `at(y, x)` gives the line's first index, the position on the
/// line, the stride between samples and the line's length.
fn blur_pass(
    src: &[f32],
    w: usize,
    h: usize,
    k: &[f32],
    at: impl Fn(usize, usize) -> (usize, usize, usize, usize),
) -> Vec<f32> {
    let mut out = vec![0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            let (start, pos, stride, len) = at(y, x);
            let mut acc = 0.0;
            for (j, kv) in k.iter().enumerate() {
                let p = (pos as i64 + j as i64 - 5).clamp(0, len as i64 - 1) as usize;
                acc += kv * src[start + p * stride];
            }
            out[y * w + x] = acc;
        }
    }
    out
}

/// Mean SSIM of two luma planes of the same size (range 0–255).
pub fn ssim(a: &[f32], b: &[f32], w: usize, h: usize) -> f64 {
    let (c1, c2) = ((0.01f32 * 255.0).powi(2), (0.03f32 * 255.0).powi(2));
    let prod = |f: &dyn Fn(f32, f32) -> f32| a.iter().zip(b).map(|(x, y)| f(*x, *y)).collect::<Vec<_>>();
    let (ma, mb) = (blur(a, w, h), blur(b, w, h));
    let (aa, bb, ab) = (
        blur(&prod(&|x, _| x * x), w, h),
        blur(&prod(&|_, y| y * y), w, h),
        blur(&prod(&|x, y| x * y), w, h),
    );
    let mut total = 0f64;
    for i in 0..w * h {
        let (va, vb, cov) = (
            aa[i] - ma[i] * ma[i],
            bb[i] - mb[i] * mb[i],
            ab[i] - ma[i] * mb[i],
        );
        let s = ((2.0 * ma[i] * mb[i] + c1) * (2.0 * cov + c2))
            / ((ma[i] * ma[i] + mb[i] * mb[i] + c1) * (va + vb + c2));
        total += f64::from(s);
    }
    total / (w * h) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_ssim_is_one_for_equal_images_and_drops_with_noise() {
        let (w, h) = (40, 30);
        let a: Vec<f32> = (0..w * h).map(|i| ((i * 7) % 255) as f32).collect();
        assert!((ssim(&a, &a, w, h) - 1.0).abs() < 1e-6);
        let noisy: Vec<f32> = a
            .iter()
            .enumerate()
            .map(|(i, v)| (v + if i % 2 == 0 { 20.0 } else { -20.0 }).clamp(0.0, 255.0))
            .collect();
        let s = ssim(&a, &noisy, w, h);
        assert!(s < 0.95 && s > 0.0, "{s}");
    }

    #[test]
    fn test_target_sizes() {
        assert_eq!(target("fit320", 1600, 1200), (320, 240));
        assert_eq!(target("fit320", 1200, 1600), (240, 320));
        assert_eq!(target("fit320", 100, 50), (100, 50));
        assert_eq!(target("half", 1601, 1200), (801, 600));
    }
}
