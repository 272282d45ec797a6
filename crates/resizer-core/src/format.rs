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

/// Parses `Accept` into lowercase media ranges and q-values; bad q-values count as 1.
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
                    q = v
                        .trim()
                        .parse::<f32>()
                        .ok()
                        .filter(|q| (0.0..=1.0).contains(q))
                        .unwrap_or(1.0);
                }
            }
            Some((range, q))
        })
        .collect()
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
}
