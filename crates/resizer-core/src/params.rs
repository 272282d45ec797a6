//! Parsing and validation of the `POST /v1/resize` query.

use serde::{Deserialize, Serialize};

use crate::format::ImageFormat;

/// How the image is fitted into the requested box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// Scale to fit inside the box, keeping the aspect ratio.
    #[default]
    Contain,
    /// Scale to cover the box, keeping the aspect ratio, and crop the centre.
    Cover,
    /// Stretch to exactly the box.
    Fill,
}

impl Fit {
    /// Returns the lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Contain => "contain",
            Self::Cover => "cover",
            Self::Fill => "fill",
        }
    }

    /// Parses the lowercase name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "contain" => Some(Self::Contain),
            "cover" => Some(Self::Cover),
            "fill" => Some(Self::Fill),
            _ => None,
        }
    }
}

/// Which frames of an animated input make the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Frames {
    /// Every frame, with its timing and the loop count, when the output
    /// format animates (GIF, WebP); the first frame otherwise.
    #[default]
    All,
    /// The first frame only: a still, whatever the format.
    First,
}

impl Frames {
    fn is_all(&self) -> bool {
        *self == Self::All
    }

    /// Parses the lowercase name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "all" => Some(Self::All),
            "first" => Some(Self::First),
            _ => None,
        }
    }
}

/// The requested output format: a fixed one, or negotiated from the input and `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FormatChoice {
    /// Same as input unless `Accept` prefers another supported format.
    #[default]
    Auto,
    /// Always this format.
    Fixed(ImageFormat),
}

/// Validated resize parameters. Dimensions are within `1..=max_output_side`.
/// Absent and default values are left out of the JSON: it rides in every job
/// descriptor, which we keep to a few hundred bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResizeParams {
    /// Target width in pixels, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Target height in pixels, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Fit mode.
    pub fit: Fit,
    /// Output format choice.
    pub format: FormatChoice,
    /// Encoder quality 1–100; `None` means the format's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<u8>,
    /// Whether the output may be larger than the input.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub enlarge: bool,
    /// Which frames of an animation are kept.
    #[serde(default, skip_serializing_if = "Frames::is_all")]
    pub frames: Frames,
}

/// Why a query was refused; rendered as `invalid_parameter` (or `output_too_large`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// A parameter's value is malformed or out of range.
    #[error("parameter `{name}` {reason}")]
    Invalid {
        /// The parameter name.
        name: String,
        /// What is wrong, as a sentence fragment.
        reason: String,
    },
    /// A requested side exceeds the output limit.
    #[error("parameter `{name}` is {value}, above the output limit of {limit} pixels")]
    OutputTooLarge {
        /// The parameter name.
        name: &'static str,
        /// The requested value.
        value: u64,
        /// The configured limit.
        limit: u32,
    },
}

fn invalid(name: &str, reason: impl Into<String>) -> ParamError {
    ParamError::Invalid {
        name: name.to_string(),
        reason: reason.into(),
    }
}

impl ResizeParams {
    /// `width=w` and every default: contain, the input's format, its quality, no enlarging.
    pub fn width(w: u32) -> Self {
        Self {
            width: Some(w),
            height: None,
            fit: Fit::Contain,
            format: FormatChoice::Auto,
            quality: None,
            enlarge: false,
            frames: Frames::All,
        }
    }

    /// Parses query pairs. Unknown or repeated parameters are refused so typos
    /// surface as errors instead of silently producing the wrong image.
    pub fn parse(pairs: &[(String, String)], max_output_side: u32) -> Result<Self, ParamError> {
        let mut params = ResizeParams {
            width: None,
            height: None,
            fit: Fit::Contain,
            format: FormatChoice::Auto,
            quality: None,
            enlarge: false,
            frames: Frames::All,
        };
        let mut seen: Vec<&str> = Vec::new();
        for (name, value) in pairs {
            if seen.contains(&name.as_str()) {
                return Err(invalid(name, "is given more than once"));
            }
            seen.push(name);
            match name.as_str() {
                "width" => params.width = Some(parse_side("width", value, max_output_side)?),
                "height" => params.height = Some(parse_side("height", value, max_output_side)?),
                "fit" => {
                    params.fit = Fit::parse(value)
                        .ok_or_else(|| invalid("fit", "must be one of contain, cover, fill"))?;
                }
                "format" => {
                    params.format = if value == "auto" {
                        FormatChoice::Auto
                    } else {
                        FormatChoice::Fixed(ImageFormat::parse(value).ok_or_else(|| {
                            invalid("format", "must be one of auto, jpeg, png, webp, avif, gif, jxl")
                        })?)
                    };
                }
                "quality" => {
                    let q = decimal(value)
                        .filter(|q| (1..=100).contains(q))
                        .and_then(|q| u8::try_from(q).ok())
                        .ok_or_else(|| invalid("quality", "must be an integer from 1 to 100"))?;
                    params.quality = Some(q);
                }
                "enlarge" => {
                    params.enlarge = match value.as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(invalid("enlarge", "must be true or false")),
                    };
                }
                "frames" => {
                    params.frames =
                        Frames::parse(value).ok_or_else(|| invalid("frames", "must be all or first"))?;
                }
                other => return Err(invalid(other, "is not a known parameter")),
            }
        }
        if params.width.is_none() && params.height.is_none() {
            return Err(invalid("width", "or `height` is required"));
        }
        Ok(params)
    }
}

impl ResizeParams {
    /// The parameters as query pairs, sorted by name, defaults left out:
    /// one spelling per meaning, so [`ResizeParams::parse`] reads back the
    /// same value and equal parameters print equal strings.
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if self.enlarge {
            pairs.push(("enlarge", "true".to_string()));
        }
        if self.fit != Fit::Contain {
            pairs.push(("fit", self.fit.as_str().to_string()));
        }
        if let FormatChoice::Fixed(f) = self.format {
            pairs.push(("format", f.as_str().to_string()));
        }
        if self.frames == Frames::First {
            pairs.push(("frames", "first".to_string()));
        }
        if let Some(h) = self.height {
            pairs.push(("height", h.to_string()));
        }
        if let Some(q) = self.quality {
            pairs.push(("quality", q.to_string()));
        }
        if let Some(w) = self.width {
            pairs.push(("width", w.to_string()));
        }
        pairs
    }
}

/// A decimal integer exactly as docs/errors.md describes it: one or more
/// ASCII digits, no sign, no spaces. A value too long for `u64` saturates, so
/// a 20-digit width is an output that is too large, not a malformed one.
fn decimal(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(value.bytes().fold(0u64, |acc, c| {
        acc.saturating_mul(10).saturating_add(u64::from(c - b'0'))
    }))
}

fn parse_side(name: &'static str, value: &str, max: u32) -> Result<u32, ParamError> {
    let v =
        decimal(value).ok_or_else(|| invalid(name, "must be a positive integer (decimal digits only)"))?;
    if v == 0 {
        return Err(invalid(name, "must be at least 1"));
    }
    if v > u64::from(max) {
        return Err(ParamError::OutputTooLarge {
            name,
            value: v,
            limit: max,
        });
    }
    Ok(v as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn test_pairs_read_back_as_the_same_parameters() {
        let p = ResizeParams::parse(
            &q(&[
                ("quality", "55"),
                ("frames", "first"),
                ("fit", "cover"),
                ("height", "20"),
            ]),
            8192,
        )
        .unwrap();
        let pairs: Vec<(String, String)> = p
            .to_pairs()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(
            pairs,
            q(&[
                ("fit", "cover"),
                ("frames", "first"),
                ("height", "20"),
                ("quality", "55")
            ])
        );
        assert_eq!(ResizeParams::parse(&pairs, 8192).unwrap(), p);
    }

    #[test]
    fn test_params_defaults() {
        let p = ResizeParams::parse(&q(&[("width", "300")]), 8192).unwrap();
        assert_eq!(p.width, Some(300));
        assert_eq!(p.height, None);
        assert_eq!(p.fit, Fit::Contain);
        assert_eq!(p.format, FormatChoice::Auto);
        assert!(!p.enlarge);
        assert_eq!(p.frames, Frames::All);
    }

    #[test]
    fn test_params_full() {
        let p = ResizeParams::parse(
            &q(&[
                ("width", "10"),
                ("height", "20"),
                ("fit", "cover"),
                ("format", "webp"),
                ("quality", "55"),
                ("enlarge", "true"),
                ("frames", "first"),
            ]),
            8192,
        )
        .unwrap();
        assert_eq!(p.fit, Fit::Cover);
        assert_eq!(p.format, FormatChoice::Fixed(ImageFormat::Webp));
        assert_eq!(p.quality, Some(55));
        assert!(p.enlarge);
        assert_eq!(p.frames, Frames::First);
        // Defaults stay out of the job descriptor; `first` rides in it.
        let json = serde_json::to_string(&p).unwrap();
        assert!(json.contains(r#""frames":"first""#), "{json}");
        let all = ResizeParams::parse(&q(&[("width", "10"), ("frames", "all")]), 8192).unwrap();
        assert!(!serde_json::to_string(&all).unwrap().contains("frames"));
    }

    #[test]
    fn test_params_refuse_bad_values() {
        for bad in [
            vec![],
            vec![("width", "0")],
            vec![("width", "-3")],
            vec![("width", "abc")],
            vec![("width", "10"), ("fit", "stretch")],
            vec![("width", "10"), ("quality", "0")],
            vec![("width", "10"), ("quality", "101")],
            vec![("width", "10"), ("format", "heic")],
            vec![("width", "10"), ("frames", "2")],
            vec![("width", "10"), ("frames", "First")],
            vec![("width", "10"), ("width", "20")],
            vec![("width", "10"), ("colour", "red")],
            vec![("width", "+10")],
            vec![("width", " 10")],
            vec![("width", "10 ")],
            vec![("width", "")],
            vec![("width", "1e3")],
            vec![("width", "\u{0661}")],
            vec![("width", "10"), ("quality", "+50")],
            vec![("width", "10"), ("quality", "")],
        ] {
            let err = ResizeParams::parse(&q(&bad), 8192).unwrap_err();
            assert!(matches!(err, ParamError::Invalid { .. }), "{bad:?}");
        }
    }

    #[test]
    fn test_params_over_output_limit() {
        let err = ResizeParams::parse(&q(&[("width", "9000")]), 8192).unwrap_err();
        assert!(matches!(err, ParamError::OutputTooLarge { .. }));
        for huge in [
            "99999999999999999",
            "18446744073709551616",
            "123456789012345678901234567890",
        ] {
            let err = ResizeParams::parse(&q(&[("height", huge)]), 8192).unwrap_err();
            assert!(matches!(err, ParamError::OutputTooLarge { .. }), "{huge}");
        }
    }
}
