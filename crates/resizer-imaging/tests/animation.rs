//! Animated GIF and WebP: every frame composited as browsers do (GIF's
//! three disposal methods, transparency), resized, and written again as an
//! animated GIF or WebP with each frame's duration and the loop count; a
//! still when asked (`frames=first`) or when the format cannot animate; frame
//! bombs refused from the header.

use resizer_core::ImageFormat;
use resizer_core::params::{Frames, ResizeParams};
use resizer_imaging::animation::{self, Frame};
use resizer_imaging::{ImagingError, Limits, Pipeline, probe};

const RED: [u8; 4] = [255, 0, 0, 255];
const GREEN: [u8; 4] = [0, 255, 0, 255];
const BLUE: [u8; 4] = [0, 0, 255, 255];
const YELLOW: [u8; 4] = [255, 255, 0, 255];
const CLEAR: [u8; 4] = [0, 0, 0, 0];
/// Black, red, green, blue, yellow, and index 5 used as the transparent one.
const PALETTE: [u8; 18] = [0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 0, 9, 9, 9];

/// A 40×30 animation exercising each disposal method (delays in 1/100 s):
/// 1. the whole screen red, kept (50 ms);
/// 2. a green 10×10 at (5, 5), restored to background after (100 ms);
/// 3. a blue 10×10 at (20, 10) whose top-left 5×5 is transparent, restored
///    to the previous canvas after (delay 0);
/// 4. a yellow 4×4 at (0, 0), kept (200 ms). Played 3 times (loop count 2).
fn disposal_gif() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut e = gif::Encoder::new(&mut out, 40, 30, &PALETTE).unwrap();
        e.set_repeat(gif::Repeat::Finite(2)).unwrap();
        let mut blue = vec![3u8; 100];
        for y in 0..5 {
            for x in 0..5 {
                blue[y * 10 + x] = 5;
            }
        }
        let frames = [
            (0, 0, 40, 30, vec![1u8; 1200], 5, gif::DisposalMethod::Keep),
            (5, 5, 10, 10, vec![2u8; 100], 10, gif::DisposalMethod::Background),
            (20, 10, 10, 10, blue, 0, gif::DisposalMethod::Previous),
            (0, 0, 4, 4, vec![4u8; 16], 20, gif::DisposalMethod::Keep),
        ];
        for (left, top, w, h, pixels, delay, dispose) in frames {
            let mut f = gif::Frame::from_indexed_pixels(w, h, pixels, Some(5));
            (f.left, f.top, f.delay, f.dispose) = (left, top, delay, dispose);
            e.write_frame(&f).unwrap();
        }
    }
    out
}

fn decode_all(data: &[u8]) -> (Vec<Frame>, u32) {
    let p = probe(data).unwrap();
    let mut frames = Vec::new();
    let plays = animation::frames(data, &p, 1 << 24, &mut |f| {
        frames.push(f);
        Ok(())
    })
    .unwrap();
    (frames, plays)
}

fn at(f: &Frame, x: u32, y: u32) -> [u8; 4] {
    let c = usize::from(f.pixels.channels);
    let i = (y * f.pixels.width + x) as usize * c;
    let p = &f.pixels.data[i..i + c];
    if c == 4 {
        [p[0], p[1], p[2], p[3]]
    } else {
        [p[0], p[1], p[2], 255]
    }
}

/// Close enough after resampling and a palette or lossy encode (4:2:0 WebP
/// bleeds a 5-pixel square's neighbours into it), far from every other colour.
fn near(a: [u8; 4], b: [u8; 4]) -> bool {
    if a[3] == 0 && b[3] == 0 {
        return true;
    }
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 64)
}

fn params(width: u32) -> ResizeParams {
    ResizeParams::width(width)
}

#[test]
fn test_gif_frames_are_composited_with_each_disposal_method() {
    let data = disposal_gif();
    let p = probe(&data).unwrap();
    assert_eq!((p.width, p.height, p.frames), (40, 30, 4));
    let (frames, plays) = decode_all(&data);
    assert_eq!(plays, 3);
    let durations: Vec<u32> = frames.iter().map(|f| f.duration_ms).collect();
    assert_eq!(durations, [50, 100, 0, 200]);
    let [f1, f2, f3, f4] = &frames[..] else { panic!() };
    assert_eq!(at(f1, 7, 7), RED);
    assert_eq!(at(f2, 7, 7), GREEN);
    assert_eq!(at(f2, 30, 25), RED);
    // Frame 2 restored to background: its square is transparent now.
    assert_eq!(at(f3, 7, 7), CLEAR);
    assert_eq!(at(f3, 27, 17), BLUE);
    assert_eq!(
        at(f3, 21, 11),
        RED,
        "frame 3's transparent pixels show the canvas"
    );
    // Frame 3 restored to previous: the canvas before it, frame 2's hole included.
    assert_eq!(at(f4, 27, 17), RED);
    assert_eq!(at(f4, 7, 7), CLEAR);
    assert_eq!(at(f4, 1, 1), YELLOW);
}

/// The resized animation, in both formats that animate, read back: sizes,
/// durations (WebP writes GIF's delay 0 as the 100 ms browsers show), loop
/// count, and each frame's content.
#[test]
fn test_animated_gif_resizes_to_animated_gif_and_webp() {
    let data = disposal_gif();
    let mut p = Pipeline::try_new().unwrap();
    for (format, durations) in [
        (ImageFormat::Gif, [50, 100, 0, 200]),
        (ImageFormat::Webp, [50, 100, 100, 200]),
    ] {
        // 0.8×: each square keeps a core of pixels untouched by its neighbours.
        let out = p.run(&data, &params(32), format, &Limits::default()).unwrap();
        assert_eq!((out.width, out.height, out.frames), (32, 24, 4));
        let back = probe(&out.bytes).unwrap();
        assert_eq!(
            (back.format, back.width, back.height, back.frames),
            (format, 32, 24, 4)
        );
        let (frames, plays) = decode_all(&out.bytes);
        assert_eq!(plays, 3, "{format}");
        let got: Vec<u32> = frames.iter().map(|f| f.duration_ms).collect();
        assert_eq!(got, durations, "{format}");
        let check = |frame: usize, x: u32, y: u32, want: [u8; 4]| {
            let got = at(&frames[frame], x, y);
            assert!(
                near(got, want),
                "{format} frame {frame} at ({x}, {y}): {got:?}, not {want:?}"
            );
        };
        check(0, 8, 8, RED);
        check(1, 8, 8, GREEN);
        check(2, 22, 14, BLUE);
        check(2, 8, 8, CLEAR);
        assert_eq!(
            at(&frames[2], 8, 8)[3],
            0,
            "{format}: the cleared square is transparent"
        );
        check(3, 22, 14, RED);
        check(3, 1, 1, YELLOW);
    }
}

#[test]
fn test_animation_to_a_still_format_or_frames_first_is_the_first_frame() {
    let data = disposal_gif();
    let mut p = Pipeline::try_new().unwrap();
    let first = ResizeParams {
        frames: Frames::First,
        ..params(20)
    };
    let out = p
        .run(&data, &first, ImageFormat::Gif, &Limits::default())
        .unwrap();
    assert_eq!((probe(&out.bytes).unwrap().frames, out.frames), (1, 1));
    let (frames, _) = decode_all(&out.bytes);
    assert!(near(at(&frames[0], 5, 5), RED));
    for format in [ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::Avif] {
        let out = p.run(&data, &params(20), format, &Limits::default()).unwrap();
        let back = probe(&out.bytes).unwrap();
        assert_eq!((back.format, back.frames, back.width), (format, 1, 20));
    }
    // An animated WebP's still is its first frame too.
    let webp = p
        .run(&data, &params(20), ImageFormat::Webp, &Limits::default())
        .unwrap();
    let still = p
        .run(&webp.bytes, &first, ImageFormat::Png, &Limits::default())
        .unwrap();
    assert_eq!((still.width, still.height), (20, 15));
}

/// A GIF of `n` 1×1 frames.
fn many_frames(n: usize, side: u16) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut e = gif::Encoder::new(&mut out, side, side, &PALETTE).unwrap();
        let pixels = vec![1u8; usize::from(side) * usize::from(side)];
        for _ in 0..n {
            let f = gif::Frame::from_indexed_pixels(side, side, pixels.clone(), None);
            e.write_frame(&f).unwrap();
        }
    }
    out
}

#[test]
fn test_frame_bombs_are_refused_from_the_header() {
    let mut p = Pipeline::try_new().unwrap();
    let limits = Limits::default();
    let bomb = many_frames(10_000, 1);
    assert_eq!(probe(&bomb).unwrap().frames, 10_000);
    let started = std::time::Instant::now();
    let r = p.run(&bomb, &params(1), ImageFormat::Gif, &limits);
    assert!(
        matches!(r, Err(ImagingError::TooManyFrames { frames: 10_000, .. })),
        "{r:?}"
    );
    // The still of it costs one frame.
    let first = ResizeParams {
        frames: Frames::First,
        ..params(1)
    };
    assert!(p.run(&bomb, &first, ImageFormat::Gif, &limits).is_ok());
    assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
    // 300 frames of 200×200 are 12 M pixels: over a 10 M limit together.
    let wide = many_frames(300, 200);
    let small = Limits {
        max_input_pixels: 10_000_000,
        ..limits
    };
    let r = p.run(&wide, &params(100), ImageFormat::Webp, &small);
    assert!(matches!(r, Err(ImagingError::AnimationTooLarge { .. })), "{r:?}");
}

#[test]
fn test_truncated_and_corrupt_animations_are_refused_not_half_drawn() {
    let data = disposal_gif();
    let mut p = Pipeline::try_new().unwrap();
    let webp = p
        .run(&data, &params(20), ImageFormat::Webp, &Limits::default())
        .unwrap()
        .bytes;
    for (name, good, format) in [
        ("gif", &data, ImageFormat::Gif),
        ("webp", &webp, ImageFormat::Webp),
    ] {
        for cut in [good.len() / 2, good.len() - 3] {
            let r = p.run(&good[..cut], &params(10), format, &Limits::default());
            assert!(r.is_err(), "{name} cut at {cut}: {r:?}");
        }
        for i in (0..good.len()).step_by(3) {
            let mut bad = good.clone();
            bad[i] ^= 0x5A;
            let _ = p.run(&bad, &params(10), format, &Limits::default());
        }
    }
    let out = p
        .run(&data, &params(20), ImageFormat::Gif, &Limits::default())
        .unwrap();
    assert_eq!(
        probe(&out.bytes).unwrap().frames,
        4,
        "the pipeline works after them"
    );
}

/// An animated WebP from libwebp's own `img2webp` (Debian's `webp` package,
/// installed by scripts/setup.sh): sub-rectangle frames with alpha blending,
/// lossless, so the composited frames must equal the PNGs they were made from.
#[test]
fn test_animated_webp_from_img2webp_decodes_to_its_frames_and_resizes() {
    let dir = tempfile::tempdir().unwrap();
    let (w, h) = (40u32, 30u32);
    let mut sources = Vec::new();
    let mut args: Vec<String> = ["-loop", "2", "-lossless"].map(String::from).to_vec();
    for (i, duration) in [70, 140, 210].into_iter().enumerate() {
        let mut rgba = RED.repeat((w * h) as usize);
        for y in 5..15 {
            for x in 5..15 {
                let px = (y * w + x) as usize * 4;
                // Frame 2 adds a green square; frame 3 makes it transparent.
                match i {
                    1 => rgba[px..px + 4].copy_from_slice(&GREEN),
                    2 => rgba[px..px + 4].copy_from_slice(&CLEAR),
                    _ => {}
                }
            }
        }
        let path = dir.path().join(format!("{i}.png"));
        std::fs::write(&path, png_rgba(w, h, &rgba)).unwrap();
        args.extend(["-d".into(), duration.to_string(), path.display().to_string()]);
        sources.push(rgba);
    }
    let webp = dir.path().join("anim.webp");
    let status = std::process::Command::new("img2webp")
        .args(&args)
        .arg("-o")
        .arg(&webp)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("img2webp (Debian's webp, installed by scripts/setup.sh)");
    assert!(status.success());
    let data = std::fs::read(&webp).unwrap();
    let p = probe(&data).unwrap();
    assert_eq!(
        (p.format, p.width, p.height, p.frames),
        (ImageFormat::Webp, w, h, 3)
    );
    let (frames, plays) = decode_all(&data);
    assert_eq!(plays, 2);
    let durations: Vec<u32> = frames.iter().map(|f| f.duration_ms).collect();
    assert_eq!(durations, [70, 140, 210]);
    for (i, (f, want)) in frames.iter().zip(&sources).enumerate() {
        // Fully transparent pixels may carry any colour.
        let same = f
            .pixels
            .data
            .chunks(4)
            .zip(want.chunks(4))
            .all(|(a, b)| a == b || a[3] == 0 && b[3] == 0);
        assert!(same, "frame {i} differs from its source");
    }
    let mut pipeline = Pipeline::try_new().unwrap();
    let out = pipeline
        .run(&data, &params(20), ImageFormat::Gif, &Limits::default())
        .unwrap();
    let (frames, plays) = decode_all(&out.bytes);
    assert_eq!((frames.len(), plays, out.width, out.height), (3, 2, 20, 15));
    assert!(near(at(&frames[1], 5, 5), GREEN));
    assert_eq!(at(&frames[2], 5, 5)[3], 0);
}

fn png_rgba(w: u32, h: u32, rgba: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut e = png::Encoder::new(&mut out, w, h);
    e.set_color(png::ColorType::Rgba);
    let mut writer = e.write_header().unwrap();
    writer.write_image_data(rgba).unwrap();
    writer.finish().unwrap();
    out
}
