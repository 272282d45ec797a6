//! The header probe and the whole pipeline, with the production code and
//! limits set small, so the fuzzer explores instead of allocating.

use std::cell::RefCell;

use resizer_core::ImageFormat;
use resizer_core::params::{Fit, FormatChoice, ResizeParams};
use resizer_imaging::decode;
use resizer_imaging::probe::sniff;
use resizer_imaging::{ImagingError, Limits, Pipeline, Probe, ShrinkOnLoad, check, plan};

/// Small enough that one input costs milliseconds, large enough for real photos' thumbnails.
const MAX_INPUT_PIXELS: u64 = 1 << 20;
const MAX_OUTPUT_SIDE: u32 = 512;

thread_local! {
    static PIPELINE: RefCell<Pipeline> = RefCell::new(Pipeline::try_new().expect("codec state"));
}

/// Any bytes: the probe answers or refuses, and what it answers is coherent.
pub fn probe(data: &[u8]) {
    let Ok(p) = resizer_imaging::probe(data) else {
        return;
    };
    assert_eq!(sniff(data), Some(p.format), "probe and sniff disagree");
    assert!(
        p.width >= 1 && p.height >= 1,
        "a zero side passed the probe: {p:?}"
    );
    assert!((1..=8).contains(&p.orientation), "orientation {}", p.orientation);
    let (ow, oh) = p.oriented_size();
    assert_eq!(u64::from(ow) * u64::from(oh), p.pixels());
    let limits = Limits {
        max_input_pixels: MAX_INPUT_PIXELS,
        ..Limits::default()
    };
    match check(data, &limits) {
        Ok(checked) => assert!(checked == p && p.pixels() <= MAX_INPUT_PIXELS),
        Err(ImagingError::TooManyPixels { pixels, .. }) => assert!(pixels > MAX_INPUT_PIXELS),
        Err(e) => panic!("check refused what probe accepted: {e}"),
    }
}

/// The pipeline on JPEG inputs (other formats are skipped: the corpus steers).
pub fn pipeline_jpeg(data: &[u8]) {
    pipeline_of(ImageFormat::Jpeg, data);
}

/// The pipeline on PNG inputs.
pub fn pipeline_png(data: &[u8]) {
    pipeline_of(ImageFormat::Png, data);
}

/// The pipeline on WebP inputs.
pub fn pipeline_webp(data: &[u8]) {
    pipeline_of(ImageFormat::Webp, data);
}

/// The pipeline on AVIF and HEIC inputs (libheif and our box reader).
pub fn pipeline_heif(data: &[u8]) {
    pipeline_of(ImageFormat::Avif, data);
    pipeline_of(ImageFormat::Heic, data);
}

/// The pipeline on GIF inputs.
pub fn pipeline_gif(data: &[u8]) {
    pipeline_of(ImageFormat::Gif, data);
}

/// Two leading bytes choose the request; the rest is the image.
///
/// Byte 0: width − 1. Byte 1: bits 0–1 fit, bit 2 a height (3/4 of the
/// width), bits 3–4 output format (input, JPEG, PNG, WebP), bit 5 enlarge,
/// bit 6 quality 30, bit 7 fast shrink-on-load.
fn request(b0: u8, b1: u8, input: ImageFormat) -> (ResizeParams, ImageFormat, Limits) {
    let width = u32::from(b0) + 1;
    let format = match (b1 >> 3) & 3 {
        0 => input.written_as(),
        1 => ImageFormat::Jpeg,
        2 => ImageFormat::Png,
        _ => ImageFormat::Webp,
    };
    let params = ResizeParams {
        width: Some(width),
        height: (b1 & 4 != 0).then_some(width * 3 / 4 + 1),
        fit: [Fit::Contain, Fit::Cover, Fit::Fill, Fit::Contain][usize::from(b1 & 3)],
        format: FormatChoice::Fixed(format),
        quality: (b1 & 64 != 0).then_some(30),
        enlarge: b1 & 32 != 0,
        frames: resizer_core::params::Frames::All,
    };
    let limits = Limits {
        max_input_pixels: MAX_INPUT_PIXELS,
        max_output_side: MAX_OUTPUT_SIDE,
        shrink_on_load: if b1 & 128 != 0 {
            ShrinkOnLoad::Fast
        } else {
            ShrinkOnLoad::Quality
        },
        max_frames: 64,
    };
    (params, format, limits)
}

/// An animation keeps at most its frames; anything else is a still.
fn check_frames(header: &Probe, made: &Probe, params: &ResizeParams, format: ImageFormat) {
    if resizer_imaging::animates(header, params, format) {
        assert!(
            made.frames <= header.frames,
            "{} frames from {}",
            made.frames,
            header.frames
        );
    } else {
        assert_eq!(made.frames, 1, "a still output");
    }
}

fn pipeline_of(input: ImageFormat, data: &[u8]) {
    let [b0, b1, image @ ..] = data else {
        return;
    };
    if sniff(image) != Some(input) {
        return;
    }
    let (params, format, limits) = request(*b0, *b1, input);
    let result = PIPELINE.with(|p| p.borrow_mut().run(image, &params, format, &limits));
    let out = match result {
        Ok(out) => out,
        Err(ImagingError::Internal(e)) => panic!("an input made an internal error (a 500): {e}"),
        Err(_) => return,
    };
    // What the pipeline read is what the header said...
    let header = check(image, &limits).expect("the pipeline ran on an input the check refuses");
    assert_eq!(out.input, header);
    // ...the output is the planned size, inside the box...
    let (ow, oh) = header.oriented_size();
    let planned = plan(ow, oh, &params, limits.max_output_side).expect("a plan the pipeline used");
    assert_eq!((out.width, out.height), (planned.out_w, planned.out_h));
    assert!(out.width <= MAX_OUTPUT_SIDE && out.height <= MAX_OUTPUT_SIDE);
    if !params.enlarge {
        assert!(
            out.width <= ow.max(1) && out.height <= oh.max(1),
            "enlarged without enlarge"
        );
    }
    // ...and a valid image of that size and format.
    let made = resizer_imaging::probe(&out.bytes).expect("the output does not probe");
    assert_eq!(
        (made.format, made.width, made.height),
        (format, out.width, out.height)
    );
    assert_eq!(made.orientation, 1, "orientation applied, metadata stripped");
    check_frames(&header, &made, &params, format);
    // The full-size decode has the probe's dimensions.
    let mut jpeg = turbojpeg::Decompressor::new().expect("decompressor");
    let full = decode::decode(
        &mut jpeg,
        image,
        &header,
        1.0,
        ShrinkOnLoad::Quality,
        MAX_INPUT_PIXELS,
        Vec::new(),
    )
    .expect("decoded once, not twice");
    if matches!(input, ImageFormat::Avif | ImageFormat::Heic) {
        // libheif applies a clean-aperture crop the header reader leaves out.
        assert!(full.width <= header.width && full.height <= header.height);
    } else {
        assert_eq!((full.width, full.height), (header.width, header.height));
    }
}
