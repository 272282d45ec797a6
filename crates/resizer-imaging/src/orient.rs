//! Applies an EXIF orientation to an interleaved pixel buffer.

use crate::decode::Pixels;

/// Returns the image as it should be displayed for EXIF orientation 1–8.
pub fn apply(src: Pixels, orientation: u8) -> Pixels {
    if !(2..=8).contains(&orientation) {
        return src;
    }
    let (w, h, c) = (src.width as usize, src.height as usize, src.channels as usize);
    let (dw, dh) = if orientation >= 5 { (h, w) } else { (w, h) };
    let mut out = vec![0u8; src.data.len()];
    for y in 0..dh {
        for x in 0..dw {
            // For each displayed pixel, the stored pixel it comes from.
            let (sx, sy) = match orientation {
                2 => (w - 1 - x, y),
                3 => (w - 1 - x, h - 1 - y),
                4 => (x, h - 1 - y),
                5 => (y, x),
                6 => (y, h - 1 - x),
                7 => (w - 1 - y, h - 1 - x),
                _ => (w - 1 - y, x), // 8
            };
            let s = (sy * w + sx) * c;
            let d = (y * dw + x) * c;
            out[d..d + c].copy_from_slice(&src.data[s..s + c]);
        }
    }
    Pixels {
        data: out,
        width: dw as u32,
        height: dh as u32,
        channels: src.channels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3×2 grey image whose values are their stored index: 0 1 2 / 3 4 5.
    fn sample() -> Pixels {
        Pixels {
            data: vec![0, 1, 2, 3, 4, 5],
            width: 3,
            height: 2,
            channels: 1,
        }
    }

    #[test]
    fn test_orientation_6_rotates_clockwise() {
        let p = apply(sample(), 6);
        assert_eq!((p.width, p.height), (2, 3));
        assert_eq!(p.data, vec![3, 0, 4, 1, 5, 2]);
    }

    #[test]
    fn test_orientation_8_rotates_counter_clockwise() {
        let p = apply(sample(), 8);
        assert_eq!(p.data, vec![2, 5, 1, 4, 0, 3]);
    }

    #[test]
    fn test_orientations_3_and_mirrors() {
        assert_eq!(apply(sample(), 3).data, vec![5, 4, 3, 2, 1, 0]);
        assert_eq!(apply(sample(), 2).data, vec![2, 1, 0, 5, 4, 3]);
        assert_eq!(apply(sample(), 4).data, vec![3, 4, 5, 0, 1, 2]);
        assert_eq!(apply(sample(), 5).data, vec![0, 3, 1, 4, 2, 5]);
        assert_eq!(apply(sample(), 7).data, vec![5, 2, 4, 1, 3, 0]);
        assert_eq!(apply(sample(), 1).data, sample().data);
    }
}
