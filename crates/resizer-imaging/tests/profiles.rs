//! Every ICC profile class a JPEG carries comes out as sRGB: CMYK (through
//! a real press profile, ghostscript's default CMYK, installed with
//! `libgs-common` by scripts/setup.sh) and grey, besides the RGB ones of
//! tests/variants.rs.

mod common;
use common::to_png;

const CMYK_PROFILE: &str = "/usr/share/color/icc/ghostscript/default_cmyk.icc";

/// Inserts `profile` as APP2 `ICC_PROFILE` chunks right after SOI.
fn with_profile(jpeg: &[u8], profile: &[u8]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    let chunks: Vec<&[u8]> = profile.chunks(65_000).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let mut seg = b"ICC_PROFILE\0".to_vec();
        seg.extend_from_slice(&[i as u8 + 1, chunks.len() as u8]);
        seg.extend_from_slice(chunk);
        out.extend_from_slice(&[0xFF, 0xE2]);
        out.extend_from_slice(&((seg.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&seg);
    }
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// A 16×16 CMYK JPEG of one ink mix, stored Adobe-inverted (libjpeg-turbo
/// writes the Adobe marker for CMYK), as Photoshop does.
fn cmyk_jpeg(ink: [u8; 4]) -> Vec<u8> {
    let stored: Vec<u8> = ink.iter().map(|v| 255 - v).collect::<Vec<_>>().repeat(16 * 16);
    let image = turbojpeg::Image {
        pixels: stored.as_slice(),
        width: 16,
        pitch: 64,
        height: 16,
        format: turbojpeg::PixelFormat::CMYK,
    };
    let mut c = turbojpeg::Compressor::new().unwrap();
    c.set_quality(100).unwrap();
    c.compress_to_vec(image).unwrap()
}

fn centre_pixel(input: &[u8]) -> [u8; 3] {
    let out = to_png(input, 8);
    let at = (4 * 8 + 4) * usize::from(out.channels);
    [out.data[at], out.data[at + 1], out.data[at + 2]]
}

#[test]
fn test_cmyk_jpeg_with_a_press_profile_comes_out_as_the_profile_says() {
    let profile =
        std::fs::read(CMYK_PROFILE).expect("ghostscript's CMYK profile (libgs-common, scripts/setup.sh)");
    // Full cyan ink on press paper is a mid blue-green, far from the
    // profile-less (255 − ink) arithmetic's pure #00FFFF.
    let plain = cmyk_jpeg([255, 0, 0, 0]);
    let naive = centre_pixel(&plain);
    let expected = [0u8, 255, 255];
    assert!(
        naive.iter().zip(expected).all(|(a, b)| a.abs_diff(b) <= 2),
        "without a profile, the browsers' arithmetic: {naive:?}"
    );
    let [r, g, b] = centre_pixel(&with_profile(&plain, &profile));
    assert!(
        r < 60 && (130..=200).contains(&g) && b >= 200,
        "cyan ink through the profile: {r},{g},{b}"
    );
    // Paper white stays white; full black ink is near black, not 0,0,0 exactly.
    let white = centre_pixel(&with_profile(&cmyk_jpeg([0, 0, 0, 0]), &profile));
    assert!(white.iter().all(|v| *v >= 240), "{white:?}");
    let black = centre_pixel(&with_profile(&cmyk_jpeg([0, 0, 0, 255]), &profile));
    assert!(black.iter().all(|v| *v <= 80), "{black:?}");
}

#[test]
fn test_grey_jpeg_with_a_grey_profile_is_converted() {
    let grey = vec![128u8; 16 * 16];
    let image = turbojpeg::Image {
        pixels: grey.as_slice(),
        width: 16,
        pitch: 16,
        height: 16,
        format: turbojpeg::PixelFormat::GRAY,
    };
    let mut c = turbojpeg::Compressor::new().unwrap();
    c.set_quality(100).unwrap();
    c.set_subsamp(turbojpeg::Subsamp::Gray).unwrap();
    let jpeg = c.compress_to_vec(image).unwrap();
    let untagged = centre_pixel(&jpeg);
    assert!(untagged.iter().all(|v| v.abs_diff(128) <= 1), "{untagged:?}");
    // A linear grey profile: stored 128 is half the light, sRGB ~188.
    let linear = moxcms::ColorProfile::new_gray_with_gamma(1.0).encode().unwrap();
    let tagged = centre_pixel(&with_profile(&jpeg, &linear));
    assert!(tagged.iter().all(|v| (184..=192).contains(v)), "{tagged:?}");
}
