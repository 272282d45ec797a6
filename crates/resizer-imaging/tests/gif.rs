//! GIF inputs: the first frame on its logical screen, transparency kept,
//! frames outside the screen and pixel bombs refused.

use resizer_core::ImageFormat;
use resizer_core::params::ResizeParams;
use resizer_imaging::{ImagingError, Limits, Pipeline, probe};

mod common;
use common::to_png;

const PALETTE: [u8; 12] = [0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255];

/// A GIF of a `w`×`h` screen whose frames are (left, top, width, height, index).
fn gif(w: u16, h: u16, frames: &[(u16, u16, u16, u16, u8)]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut e = gif::Encoder::new(&mut out, w, h, &PALETTE).unwrap();
        for &(left, top, fw, fh, index) in frames {
            let mut f = gif::Frame::from_indexed_pixels(
                fw,
                fh,
                vec![index; usize::from(fw) * usize::from(fh)],
                Some(3),
            );
            (f.left, f.top) = (left, top);
            e.write_frame(&f).unwrap();
        }
    }
    out
}

fn rgba(input: &[u8], width: u32) -> (Vec<u8>, u32, u32) {
    let out = to_png(input, width);
    assert_eq!(out.channels, 4, "transparency kept");
    (out.data, out.width, out.height)
}

#[test]
fn test_gif_first_frame_is_drawn_at_its_offset_on_a_transparent_screen() {
    // A 20×10 screen; the first frame is a red 10×10 square at x = 10.
    // A second, blue, full-screen frame must not show: the still is frame one.
    let data = gif(20, 10, &[(10, 0, 10, 10, 1), (0, 0, 20, 10, 2)]);
    let p = probe(&data).unwrap();
    assert_eq!((p.format, p.width, p.height), (ImageFormat::Gif, 20, 10));
    let (px, w, h) = rgba(&data, 20);
    assert_eq!((w, h), (20, 10));
    let at = |x: usize, y: usize| &px[(y * 20 + x) * 4..][..4];
    assert_eq!(at(2, 5)[3], 0, "left half transparent");
    assert_eq!(at(15, 5), [255, 0, 0, 255], "right half red");
}

#[test]
fn test_gif_bombs_and_lies_are_refused() {
    // A 1×1 screen with a 60000×60000 frame: outside the screen, refused
    // before its buffer exists.
    let mut lying = gif(1, 1, &[(0, 0, 1, 1, 1)]);
    let at = lying.iter().position(|&b| b == 0x2C).unwrap(); // image descriptor
    lying[at + 5..at + 9].copy_from_slice(&[0x60, 0xEA, 0x60, 0xEA]);
    let mut p = Pipeline::try_new().unwrap();
    let r = p.run(
        &lying,
        &ResizeParams::width(1),
        ImageFormat::Png,
        &Limits::default(),
    );
    assert!(matches!(r, Err(ImagingError::Undecodable(_))), "{r:?}");
    // A screen of 60000×60000: the pixel limit, from the header.
    let mut screen = gif(1, 1, &[(0, 0, 1, 1, 1)]);
    screen[6..10].copy_from_slice(&[0x60, 0xEA, 0x60, 0xEA]);
    let r = p.run(
        &screen,
        &ResizeParams::width(1),
        ImageFormat::Png,
        &Limits::default(),
    );
    assert!(matches!(r, Err(ImagingError::TooManyPixels { .. })), "{r:?}");
    // A first frame of zero width: an answer, not a panic.
    let zero = p.run(
        &gif(4, 4, &[(0, 0, 0, 4, 1)]),
        &ResizeParams::width(4),
        ImageFormat::Png,
        &Limits::default(),
    );
    assert!(
        matches!(zero, Ok(_) | Err(ImagingError::Undecodable(_))),
        "{zero:?}"
    );
    // Truncated anywhere: refused or decoded, never a panic or a hang.
    let good = gif(40, 30, &[(0, 0, 40, 30, 1)]);
    for n in 0..good.len() {
        let _ = p.run(
            &good[..n],
            &ResizeParams::width(8),
            ImageFormat::Png,
            &Limits::default(),
        );
    }
    assert!(matches!(
        p.run(
            &good[..13],
            &ResizeParams::width(8),
            ImageFormat::Png,
            &Limits::default()
        ),
        Err(ImagingError::Undecodable(_))
    ));
}
