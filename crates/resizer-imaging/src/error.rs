//! Errors of the imaging pipeline, each mapped to one public error code.

use resizer_core::{ErrorCode, PublicError};

/// Why an image could not be resized.
#[derive(Debug, thiserror::Error)]
pub enum ImagingError {
    /// The bytes are not an image format we read (or a variant we refuse, like animation).
    #[error("{0}")]
    UnsupportedFormat(String),
    /// The bytes claim a supported format but are corrupt or truncated.
    #[error("the image could not be decoded: {0}")]
    Undecodable(String),
    /// The header declares more pixels than allowed.
    #[error("the image is {width}x{height} = {pixels} pixels, above the limit of {limit}")]
    TooManyPixels {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// width × height.
        pixels: u64,
        /// The configured limit.
        limit: u64,
    },
    /// An animation with more frames than allowed.
    #[error("the animation has {frames} frames, above the limit of {limit}; `frames=first` takes a still")]
    TooManyFrames {
        /// Frames counted in the header.
        frames: u32,
        /// The configured limit.
        limit: u32,
    },
    /// An animation whose frames together have more pixels than allowed.
    #[error(
        "the animation's {frames} frames are {pixels} pixels together, above the limit of {limit}; `frames=first` takes a still"
    )]
    AnimationTooLarge {
        /// Frames counted in the header.
        frames: u32,
        /// Canvas pixels × frames.
        pixels: u64,
        /// The configured pixel limit.
        limit: u64,
    },
    /// The computed output would exceed the output side limit.
    #[error("the output would be {width}x{height}, above the output limit of {limit} pixels per side")]
    OutputTooLarge {
        /// Computed output width.
        width: u64,
        /// Computed output height.
        height: u64,
        /// The configured limit.
        limit: u32,
    },
    /// The planned output is larger than its format allows (AVIF's encoder
    /// cannot be stopped midway).
    #[error("a {format} output of {pixels} pixels is above that format's limit of {limit}")]
    FormatTooLarge {
        /// The output format.
        format: resizer_core::ImageFormat,
        /// Planned width × height.
        pixels: u64,
        /// The format's limit.
        limit: u64,
    },
    /// The request itself cannot be planned (a side of 0, or none): the API
    /// refuses these, so only a descriptor that skipped it gets here.
    #[error("invalid resize request: {0}")]
    InvalidRequest(&'static str),
    /// The job's deadline passed between two stages: the work stops there.
    #[error("the resize did not finish before its deadline (stopped after {0})")]
    OverBudget(&'static str),
    /// A bug or resource failure inside a codec.
    #[error("internal imaging error: {0}")]
    Internal(String),
}

impl PublicError for ImagingError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::UnsupportedFormat(_) => ErrorCode::UnsupportedFormat,
            Self::Undecodable(_) => ErrorCode::UndecodableImage,
            // The contract's 422 for "too many pixels" covers an animation's sum.
            Self::TooManyPixels { .. } | Self::TooManyFrames { .. } | Self::AnimationTooLarge { .. } => {
                ErrorCode::TooManyPixels
            }
            Self::OutputTooLarge { .. } | Self::FormatTooLarge { .. } => ErrorCode::OutputTooLarge,
            Self::InvalidRequest(_) => ErrorCode::InvalidParameter,
            Self::OverBudget(_) => ErrorCode::DeadlineExceeded,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }
}

pub(crate) fn truncated(what: &str) -> ImagingError {
    ImagingError::Undecodable(format!("{what} header is truncated or malformed"))
}
