//! The image formats Resizer reads and writes, and `Accept` negotiation.

use serde::{Deserialize, Serialize};

/// A supported image format, for input and output alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    /// JPEG (baseline or progressive).
    Jpeg,
    /// PNG (any bit depth, palette, interlaced).
    Png,
    /// WebP (lossy or lossless, still images).
    Webp,
}

impl ImageFormat {
    /// All formats, in the order used to break ties between non-input formats.
    pub const ALL: [ImageFormat; 3] = [ImageFormat::Webp, ImageFormat::Jpeg, ImageFormat::Png];

    /// Returns the MIME type.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Webp => "image/webp",
        }
    }

    /// Returns the file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Webp => "webp",
        }
    }

    /// Returns the lowercase name (`jpeg`, `png`, `webp`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jpeg => "jpeg",
            Self::Png => "png",
            Self::Webp => "webp",
        }
    }

    /// Parses a format name as accepted in the `format` parameter.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "jpeg" | "jpg" => Some(Self::Jpeg),
            "png" => Some(Self::Png),
            "webp" => Some(Self::Webp),
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
/// The input format is kept unless the `Accept` header gives another supported
/// format a strictly higher q-value; ties keep the input. For each format the
/// most specific matching range decides its q (`image/webp` over `image/*` over
/// `*/*`); a format no range matches has q = 0.
pub fn negotiate(accept_opt: Option<&str>, input: ImageFormat) -> ImageFormat {
    let Some(accept) = accept_opt else {
        return input;
    };
    let ranges = parse_accept(accept);
    if ranges.is_empty() {
        return input;
    }
    let q_of = |format: ImageFormat| -> f32 {
        let mut best: Option<(u8, f32)> = None;
        for (range, q) in &ranges {
            let specificity = if range == format.mime() {
                3
            } else if range == "image/*" {
                2
            } else if range == "*/*" {
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
    let input_q = q_of(input);
    let mut chosen = input;
    let mut chosen_q = input_q;
    for format in ImageFormat::ALL {
        let q = q_of(format);
        if q > chosen_q {
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

    #[test]
    fn test_negotiate_without_accept_keeps_input() {
        assert_eq!(negotiate(None, Png), Png);
        assert_eq!(negotiate(Some(""), Jpeg), Jpeg);
    }

    #[test]
    fn test_negotiate_ties_keep_input() {
        assert_eq!(negotiate(Some("image/avif,image/webp,*/*"), Jpeg), Jpeg);
        assert_eq!(negotiate(Some("image/*"), Png), Png);
    }

    #[test]
    fn test_negotiate_prefers_strictly_higher_q() {
        assert_eq!(negotiate(Some("image/webp,image/*;q=0.8"), Jpeg), Webp);
        assert_eq!(negotiate(Some("image/png;q=0.9, image/jpeg;q=0.5"), Jpeg), Png);
        assert_eq!(negotiate(Some("image/webp;q=0.1, image/jpeg"), Jpeg), Jpeg);
    }

    #[test]
    fn test_negotiate_input_not_acceptable_picks_best_other() {
        assert_eq!(negotiate(Some("image/jpeg"), Webp), Jpeg);
        assert_eq!(negotiate(Some("image/webp;q=0"), Webp), Webp);
    }

    #[test]
    fn test_negotiate_specific_range_overrides_wildcard() {
        assert_eq!(negotiate(Some("image/jpeg;q=0.2, */*"), Jpeg), Webp);
    }

    #[test]
    fn test_negotiate_ignores_malformed_q_values() {
        for bad in [
            "-1", "NaN", "nan", "inf", "1.5", "2", "0.1234", "+0.5", " ", "", "1.001", "0x1",
        ] {
            let accept = format!("image/webp;q={bad}");
            assert_eq!(negotiate(Some(&accept), Jpeg), Jpeg, "{accept}");
        }
        assert_eq!(negotiate(Some("image/webp;q=0.5, image/jpeg;q=0.4"), Jpeg), Webp);
        assert_eq!(negotiate(Some("image/webp;q=1.000"), Jpeg), Webp);
        assert_eq!(negotiate(Some("image/webp;q=1."), Jpeg), Webp);
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
