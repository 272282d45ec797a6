//! The image pipeline: everything between input bytes and output bytes.
//!
//! Synchronous and CPU-bound by design: callers run it on dedicated blocking
//! threads (the worker pool, `resizer resize`), never on the async runtime.
//!
//! # Layout
//! - [`probe`]: format, dimensions and orientation read from the header only,
//!   so limits are enforced before a single pixel is allocated.
//! - [`exif`]: the EXIF orientation tag, from a bounded TIFF walk.
//! - [`isobmff`]: the HEIF (AVIF, HEIC) boxes the probe and the colour stage need.
//! - [`plan`]: pure geometry: from source size and parameters to crop box and output size.
//! - [`limits`]: the input and output limits, checked against the header.
//!
//! Those five and [`error`] are pure code; the pixel stages below need the
//! C codecs and are behind the `codecs` feature (on by default; the API tier
//! leaves it off).
//! - [`decode`], [`orient`], [`encode`]: the pixel stages.
//! - [`animation`]: every frame of an animated GIF or WebP, and their encoding.
//! - [`heif`]: AVIF and HEIC decoding and AVIF encoding through libheif.
//! - [`jpeg12`]: 12-bit JPEGs through libjpeg-turbo's 12-bit path.
//! - [`color`]: embedded ICC profiles (Display P3, Adobe RGB, …) converted to sRGB.
//! - [`quality`]: SSIM against a float reference, for the benchmark and its guard.
//! - [`pipeline`]: one reusable [`Pipeline`] per thread that runs the stages in order.
//! - [`error`]: [`ImagingError`] and its public error code.

#[cfg(feature = "codecs")]
pub mod animation;
#[cfg(feature = "codecs")]
pub mod color;
#[cfg(feature = "codecs")]
pub mod decode;
#[cfg(feature = "codecs")]
pub mod encode;
pub mod error;
pub mod exif;
#[cfg(feature = "codecs")]
pub mod heif;
pub mod isobmff;
#[cfg(feature = "codecs")]
pub mod jpeg12;
pub mod limits;
#[cfg(feature = "codecs")]
pub mod orient;
#[cfg(feature = "codecs")]
pub mod pipeline;
pub mod plan;
pub mod probe;
#[cfg(feature = "codecs")]
pub mod quality;

pub use error::ImagingError;
pub use limits::{Limits, ShrinkOnLoad, animates, check, check_animation, check_output};
#[cfg(feature = "codecs")]
pub use pipeline::{Pipeline, ResizeOutput};
pub use plan::{Plan, plan};
pub use probe::{Probe, probe};
