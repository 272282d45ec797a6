//! The image formats Resizer reads and writes, and `Accept` negotiation.

use serde::{Deserialize, Serialize};

/// An image format Resizer reads or writes. All but HEIC are written (no HEVC
/// encoder is linked: the free one, x265, is GPL); JPEG XL is written only,
/// losslessly, behind the `format_jxl` feature flag. GIF and WebP carry
/// animations through; the others take an animation's first frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    /// JPEG (baseline or progressive).
    Jpeg,
    /// PNG (any bit depth, palette, interlaced).
    Png,
    /// WebP (lossy or lossless, still or animated).
    Webp,
    /// AVIF: AV1 in HEIF (8–12 bit, alpha, grids).
    Avif,
    /// HEIC: HEVC in HEIF (phones' photos); read only.
    Heic,
    /// GIF (still or animated; written with a palette per frame).
    Gif,
    /// JPEG XL, written only and losslessly (never chosen by `format=auto`).
    Jxl,
}

impl ImageFormat {
    /// Every format read, in the order used to break ties between non-input formats.
    pub const ALL: [ImageFormat; 6] = [
        ImageFormat::Avif,
        ImageFormat::Webp,
        ImageFormat::Jpeg,
        ImageFormat::Png,
        ImageFormat::Heic,
        ImageFormat::Gif,
    ];

    /// Every format written.
    pub const WRITTEN: [ImageFormat; 6] = [
        ImageFormat::Avif,
        ImageFormat::Webp,
        ImageFormat::Jpeg,
        ImageFormat::Png,
        ImageFormat::Gif,
        ImageFormat::Jxl,
    ];

    /// Whether Resizer can write this format.
    pub fn writable(self) -> bool {
        !matches!(self, Self::Heic)
    }

    /// Whether an animated input stays animated in this format (AVIF
    /// sequences are not written: libheif 1.23 encodes still items only).
    pub fn animates(self) -> bool {
        matches!(self, Self::Gif | Self::Webp)
    }

    /// What `format=auto` writes for an input it cannot write back when the
    /// client names nothing newer: JPEG for HEIC's photos.
    pub fn written_as(self) -> Self {
        match self {
            Self::Heic => Self::Jpeg,
            other => other,
        }
    }

    /// Returns the MIME type.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Webp => "image/webp",
            Self::Avif => "image/avif",
            Self::Heic => "image/heic",
            Self::Gif => "image/gif",
            Self::Jxl => "image/jxl",
        }
    }

    /// Returns the file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Webp => "webp",
            Self::Avif => "avif",
            Self::Heic => "heic",
            Self::Gif => "gif",
            Self::Jxl => "jxl",
        }
    }

    /// Returns the lowercase name (`jpeg`, `png`, `webp`, `avif`, `heic`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jpeg => "jpeg",
            Self::Png => "png",
            Self::Webp => "webp",
            Self::Avif => "avif",
            Self::Heic => "heic",
            Self::Gif => "gif",
            Self::Jxl => "jxl",
        }
    }

    /// Parses a format name as accepted in the `format` parameter: only the
    /// formats Resizer writes.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "jpeg" | "jpg" => Some(Self::Jpeg),
            "png" => Some(Self::Png),
            "webp" => Some(Self::Webp),
            "avif" => Some(Self::Avif),
            "gif" => Some(Self::Gif),
            "jxl" => Some(Self::Jxl),
            _ => None,
        }
    }

    /// Returns whether the format can carry an alpha channel.
    pub fn supports_alpha(self) -> bool {
        !matches!(self, Self::Jpeg)
    }
}

impl std::fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Picks the output format for `format=auto`.
///
/// The smallest format the client names explicitly wins: AVIF, then WebP,
/// each when `Accept` lists its own media type with q > 0 (browsers send
/// `image/avif,image/webp,image/*` with equal weights; a wildcard alone does not
/// ask for a newer format, so `curl`'s `*/*` keeps getting what it sent).
/// Otherwise the input's format when it is written and acceptable; otherwise
/// the writable format with the highest q, ties to the input's stand-in, then
/// JPEG, PNG, WebP, AVIF; the input's stand-in ([`ImageFormat::written_as`])
/// when nothing is acceptable at all (406 helps nobody with an `<img>` tag). For each format the most specific matching range decides its q
/// (`image/webp` over `image/*` over `*/*`); a format no range matches has q = 0.
/// An `animated` input skips AVIF (written still only), so an animation
/// stays one where the client allows: WebP, else the input's GIF or WebP.
pub fn negotiate(accept_opt: Option<&str>, input: ImageFormat, animated: bool) -> ImageFormat {
    let fallback = match input.written_as() {
        // Only GIF and WebP animate; an animated AVIF would be read as a still.
        ImageFormat::Avif if animated => ImageFormat::Webp,
        other => other,
    };
    let Some(accept) = accept_opt else {
        return fallback;
    };
    let ranges = parse_accept(accept);
    if ranges.is_empty() {
        return fallback;
    }
    let q_of = |format: ImageFormat, wildcards: bool| -> f32 {
        let mut best: Option<(u8, f32)> = None;
        for (range, q) in &ranges {
            let specificity = if range == format.mime() {
                3
            } else if wildcards && range == "image/*" {
                2
            } else if wildcards && range == "*/*" {
                1
            } else {
                continue;
            };
            if best.is_none_or(|(s, _)| specificity > s) {
                best = Some((specificity, *q));
            }
        }
        best.map_or(0.0, |(_, q)| q)
    };
    for smaller in [ImageFormat::Avif, ImageFormat::Webp] {
        if !(animated && smaller == ImageFormat::Avif) && q_of(smaller, false) > 0.0 {
            return smaller;
        }
    }
    if input.writable() && !(animated && input == ImageFormat::Avif) && q_of(input, true) > 0.0 {
        return input;
    }
    let mut chosen = fallback;
    let mut chosen_q = 0.0;
    // Ties go to the input's stand-in, then to the most widely decoded format.
    for format in [
        fallback,
        ImageFormat::Jpeg,
        ImageFormat::Png,
        ImageFormat::Webp,
        ImageFormat::Avif,
        ImageFormat::Gif,
    ] {
        let q = q_of(format, true);
        if q > chosen_q && !(animated && format == ImageFormat::Avif) {
            chosen = format;
            chosen_q = q;
        }
    }
    chosen
}

/// Parses `Accept` into lowercase media ranges and q-values. A range whose
/// q-value breaks RFC 9110's grammar (`0`–`1`, at most three decimals) is
/// dropped: a negative or `NaN` weight must not read as "most preferred".
fn parse_accept(accept: &str) -> Vec<(String, f32)> {
    accept
        .split(',')
        .filter_map(|item| {
            let mut parts = item.split(';');
            let range = parts.next()?.trim().to_ascii_lowercase();
            if range.is_empty() {
                return None;
            }
            let mut q = 1.0f32;
            for param in parts {
                if let Some((k, v)) = param.split_once('=')
                    && k.trim().eq_ignore_ascii_case("q")
                {
                    q = parse_qvalue(v.trim())?;
                }
            }
            Some((range, q))
        })
        .collect()
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )` (RFC 9110 §12.4.2).
fn parse_qvalue(v: &str) -> Option<f32> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    let frac_ok = frac.len() <= 3 && frac.bytes().all(|c| c.is_ascii_digit());
    let ok = match int {
        "0" => frac_ok,
        "1" => frac_ok && frac.bytes().all(|c| c == b'0'),
        _ => false,
    };
    if !ok {
        return None;
    }
    v.trim_end_matches('.').parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ImageFormat::*;

    /// What current browsers send for `<img>` requests.
    const CHROME: &str = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
    const FIREFOX: &str = "image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5";
    const SAFARI: &str = "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5";
    const SAFARI_15: &str = "image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5";

    #[test]
    fn test_negotiate_browsers_get_the_smallest_they_name() {
        for input in ImageFormat::ALL {
            for browser in [CHROME, FIREFOX, SAFARI] {
                assert_eq!(negotiate(Some(browser), input, false), Avif, "{browser}");
            }
            assert_eq!(negotiate(Some(SAFARI_15), input, false), Webp);
        }
    }

    #[test]
    fn test_negotiate_without_accept_keeps_input() {
        assert_eq!(negotiate(None, Png, false), Png);
        assert_eq!(negotiate(Some(""), Jpeg, false), Jpeg);
        assert_eq!(negotiate(None, Avif, false), Avif);
    }

    #[test]
    fn test_negotiate_unwritable_input_falls_back_to_jpeg() {
        assert_eq!(negotiate(None, Heic, false), Jpeg);
        assert_eq!(negotiate(Some("*/*"), Heic, false), Jpeg);
        assert_eq!(negotiate(Some("image/heic"), Heic, false), Jpeg);
        assert_eq!(negotiate(Some("image/png, image/jpeg;q=0.5"), Heic, false), Png);
    }

    #[test]
    fn test_negotiate_gif_stays_gif_for_clients_naming_nothing_newer() {
        assert_eq!(negotiate(None, Gif, false), Gif);
        assert_eq!(negotiate(Some("*/*"), Gif, true), Gif);
        assert_eq!(negotiate(Some("image/gif;q=0,image/png"), Gif, false), Png);
    }

    /// AVIF is written still only: an animation goes to WebP where the
    /// browser names it, else stays in its own format.
    #[test]
    fn test_negotiate_animated_input_skips_avif() {
        for browser in [CHROME, FIREFOX, SAFARI, SAFARI_15] {
            assert_eq!(negotiate(Some(browser), Gif, true), Webp, "{browser}");
        }
        assert_eq!(negotiate(Some("image/avif,*/*"), Gif, true), Gif);
        assert_eq!(negotiate(Some("image/avif,*/*"), Webp, true), Webp);
        assert_eq!(negotiate(Some("image/avif,image/jpeg;q=0.5"), Gif, true), Jpeg);
        assert_eq!(negotiate(Some("image/avif"), Gif, false), Avif);
    }

    #[test]
    fn test_negotiate_wildcards_keep_input() {
        assert_eq!(negotiate(Some("*/*"), Jpeg, false), Jpeg);
        assert_eq!(negotiate(Some("image/*"), Png, false), Png);
        assert_eq!(negotiate(Some("image/*;q=0.2"), Webp, false), Webp);
    }

    #[test]
    fn test_negotiate_explicit_zero_is_respected() {
        assert_eq!(
            negotiate(Some("image/avif;q=0,image/webp,*/*"), Jpeg, false),
            Webp
        );
        assert_eq!(
            negotiate(Some("image/avif;q=0,image/webp;q=0,*/*"), Jpeg, false),
            Jpeg
        );
        // A wildcard does not bring back what was refused by name.
        assert_eq!(negotiate(Some("image/webp;q=0,image/*"), Webp, false), Jpeg);
    }

    #[test]
    fn test_negotiate_input_not_acceptable_picks_best_other() {
        assert_eq!(negotiate(Some("image/jpeg"), Png, false), Jpeg);
        assert_eq!(
            negotiate(Some("image/png;q=0.9, image/jpeg;q=0.5"), Jpeg, false),
            Jpeg
        );
        assert_eq!(
            negotiate(Some("image/png;q=0.9, image/jpeg;q=0"), Jpeg, false),
            Png
        );
        assert_eq!(negotiate(Some("text/html"), Png, false), Png);
    }

    #[test]
    fn test_negotiate_specific_range_overrides_wildcard() {
        assert_eq!(negotiate(Some("image/jpeg;q=0, */*"), Jpeg, false), Png);
        assert_eq!(
            negotiate(Some("image/jpeg;q=0, image/png;q=0.1, */*;q=0.05"), Jpeg, false),
            Png
        );
    }

    #[test]
    fn test_negotiate_ignores_malformed_q_values() {
        for bad in [
            "-1", "NaN", "nan", "inf", "1.5", "2", "0.1234", "+0.5", " ", "", "1.001", "0x1",
        ] {
            let accept = format!("image/webp;q={bad}");
            assert_eq!(negotiate(Some(&accept), Jpeg, false), Jpeg, "{accept}");
        }
        assert_eq!(
            negotiate(Some("image/webp;q=0.5, image/jpeg;q=0.9"), Jpeg, false),
            Webp
        );
        assert_eq!(negotiate(Some("image/webp;q=1.000"), Jpeg, false), Webp);
        assert_eq!(negotiate(Some("image/webp;q=1."), Jpeg, false), Webp);
    }

    #[test]
    fn test_qvalue_grammar() {
        assert_eq!(parse_qvalue("0"), Some(0.0));
        assert_eq!(parse_qvalue("0.8"), Some(0.8));
        assert_eq!(parse_qvalue("1"), Some(1.0));
        assert_eq!(parse_qvalue("1.0"), Some(1.0));
        assert_eq!(parse_qvalue("-0.5"), None);
        assert_eq!(parse_qvalue("NaN"), None);
    }
}
