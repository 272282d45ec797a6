//! Animations: GIF and WebP inputs with more than one frame, kept animated
//! in GIF and WebP outputs.
//!
//! Every frame is composited onto the whole canvas here (GIF's disposal
//! methods by us, WebP's blending and disposal by libwebp's demuxer), handed
//! to the pipeline to be resized exactly like a still, and the resized frames
//! are encoded again with their durations and the loop count. Only one
//! canvas (and, for GIF's "restore previous", one saved copy) is held while
//! decoding; the limits on the frame count and on the frames' pixels
//! together are checked from the header first ([`crate::limits::check_animation`]).

use std::io::Cursor;

use resizer_core::ImageFormat;

use crate::decode::Pixels;
use crate::error::ImagingError;
use crate::probe::Probe;

/// One composited frame and how long it shows.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The whole canvas after this frame is drawn (RGBA when decoded).
    pub pixels: Pixels,
    /// Display time in milliseconds, as coded.
    pub duration_ms: u32,
}

/// How often an animation plays, 0 for forever (WebP's convention).
pub type Plays = u32;

/// NeuQuant's sampling factor for GIF palettes (1 best … 30 fastest); 10 is
/// the `gif` crate's own recommendation, and a fit-320 frame takes ~5 ms.
const GIF_QUANT_SPEED: i32 = 10;

fn undecodable(e: impl std::fmt::Display) -> ImagingError {
    ImagingError::Undecodable(e.to_string())
}

fn internal(e: impl std::fmt::Display) -> ImagingError {
    ImagingError::Internal(e.to_string())
}

/// Decodes every frame of an animated GIF or WebP in order, handing each to
/// `each` as soon as it is composited. Returns how often the input plays.
pub fn frames(
    data: &[u8],
    probe: &Probe,
    max_pixels: u64,
    each: &mut dyn FnMut(Frame) -> Result<(), ImagingError>,
) -> Result<Plays, ImagingError> {
    match probe.format {
        ImageFormat::Gif => gif_frames(data, probe, max_pixels, each),
        ImageFormat::Webp => webp_frames(data, probe, false, each),
        other => Err(internal(format!("{other} has no animation decoder"))),
    }
}

/// The first frame of an animated WebP (what a still output shows); the
/// rest are never decoded.
pub fn first_webp_frame(data: &[u8], probe: &Probe) -> Result<Pixels, ImagingError> {
    let mut first = None;
    webp_frames(data, probe, true, &mut |f| {
        first = Some(f.pixels);
        Ok(())
    })?;
    first.ok_or_else(|| ImagingError::Undecodable("the WebP animation has no frame".into()))
}

/// GIF's loop count is the repetitions after the first play (the NETSCAPE
/// extension; absent, it plays once), which is how browsers read it.
fn plays_of_gif(repeat: gif::Repeat) -> Plays {
    match repeat {
        gif::Repeat::Infinite => 0,
        gif::Repeat::Finite(n) => u32::from(n) + 1,
    }
}

fn gif_repeat(plays: Plays) -> gif::Repeat {
    match plays {
        0 => gif::Repeat::Infinite,
        n => gif::Repeat::Finite(u16::try_from(n - 1).unwrap_or(u16::MAX)),
    }
}

/// A frame's rectangle on the canvas, clipped to it.
#[derive(Debug, Clone, Copy)]
struct Rect {
    left: usize,
    top: usize,
    width: usize,
    height: usize,
}

/// Draws a frame's RGBA pixels onto the canvas; GIF transparency is binary,
/// so a pixel of alpha 0 leaves the canvas as it was.
fn draw(canvas: &mut [u8], canvas_w: usize, frame: &[u8], r: Rect) {
    if r.width == 0 {
        return;
    }
    let canvas_h = canvas.len() / 4 / canvas_w.max(1);
    for (y, row) in frame.chunks_exact(r.width * 4).enumerate() {
        let cy = r.top + y;
        if cy >= canvas_h {
            break;
        }
        for (x, px) in row.chunks_exact(4).enumerate() {
            let cx = r.left + x;
            if cx < canvas_w && px[3] != 0 {
                let at = (cy * canvas_w + cx) * 4;
                canvas[at..at + 4].copy_from_slice(px);
            }
        }
    }
}

/// "Restore to background": browsers clear to transparent, not to the
/// background colour (which the GIF crate's docs call unused in practice).
fn clear(canvas: &mut [u8], canvas_w: usize, r: Rect) {
    let canvas_h = canvas.len() / 4 / canvas_w.max(1);
    for y in r.top..(r.top + r.height).min(canvas_h) {
        let from = (y * canvas_w + r.left.min(canvas_w)) * 4;
        let to = (y * canvas_w + (r.left + r.width).min(canvas_w)) * 4;
        canvas[from..to].fill(0);
    }
}

/// A GIF decoder giving RGBA frames, refusing frames outside the logical
/// screen (so the screen the limits were checked on bounds every buffer),
/// its allocations capped should a frame lie anyway.
fn gif_decoder(data: &[u8], max_pixels: u64) -> Result<gif::Decoder<Cursor<&[u8]>>, ImagingError> {
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::RGBA);
    options.check_frame_consistency(true);
    let bytes = max_pixels.saturating_mul(4).max(1);
    options.set_memory_limit(gif::MemoryLimit::Bytes(
        bytes.try_into().unwrap_or(std::num::NonZeroU64::MIN),
    ));
    options.read_info(Cursor::new(data)).map_err(undecodable)
}

/// GIF's canvas between frames: the previous frame's disposal is applied
/// before the next is drawn.
struct Canvas {
    pixels: Vec<u8>,
    width: usize,
    /// The canvas before a "restore to previous" frame was drawn.
    saved: Option<Vec<u8>>,
    pending: Option<(gif::DisposalMethod, Rect)>,
}

impl Canvas {
    fn new(width: usize, height: usize) -> Self {
        Self {
            pixels: vec![0u8; width * height * 4],
            width,
            saved: None,
            pending: None,
        }
    }

    /// Draws `frame` after disposing of the one before; returns the canvas.
    fn draw(&mut self, frame: &gif::Frame<'_>) -> &[u8] {
        match self.pending.take() {
            Some((gif::DisposalMethod::Background, r)) => clear(&mut self.pixels, self.width, r),
            Some((gif::DisposalMethod::Previous, _)) => {
                if let Some(s) = self.saved.take() {
                    self.pixels = s;
                }
            }
            _ => {}
        }
        if frame.dispose == gif::DisposalMethod::Previous {
            self.saved = Some(self.pixels.clone());
        }
        let r = Rect {
            left: usize::from(frame.left),
            top: usize::from(frame.top),
            width: usize::from(frame.width),
            height: usize::from(frame.height),
        };
        draw(&mut self.pixels, self.width, &frame.buffer, r);
        self.pending = Some((frame.dispose, r));
        &self.pixels
    }
}

/// A GIF's first frame on its transparent logical screen: a still, or the
/// still of an animation; the rest is never decoded.
pub fn first_gif_frame(data: &[u8], probe: &Probe, max_pixels: u64) -> Result<Pixels, ImagingError> {
    let mut decoder = gif_decoder(data, max_pixels)?;
    let frame = decoder
        .read_next_frame()
        .map_err(undecodable)?
        .ok_or_else(|| ImagingError::Undecodable("the GIF has no frame".into()))?;
    let mut canvas = Canvas::new(probe.width as usize, probe.height as usize);
    Ok(Pixels {
        data: canvas.draw(frame).to_vec(),
        width: probe.width,
        height: probe.height,
        channels: 4,
    })
}

fn gif_frames(
    data: &[u8],
    probe: &Probe,
    max_pixels: u64,
    each: &mut dyn FnMut(Frame) -> Result<(), ImagingError>,
) -> Result<Plays, ImagingError> {
    let mut decoder = gif_decoder(data, max_pixels)?;
    let mut canvas = Canvas::new(probe.width as usize, probe.height as usize);
    let mut count = 0u32;
    while let Some(frame) = decoder.read_next_frame().map_err(undecodable)? {
        count += 1;
        // The limits were checked on the header walk's count.
        if count > probe.frames {
            return Err(ImagingError::Undecodable(
                "the GIF has more frames than its block structure shows".into(),
            ));
        }
        let pixels = Pixels {
            data: canvas.draw(frame).to_vec(),
            width: probe.width,
            height: probe.height,
            channels: 4,
        };
        let duration_ms = u32::from(frame.delay) * 10;
        each(Frame { pixels, duration_ms })?;
    }
    if count == 0 {
        return Err(ImagingError::Undecodable("the GIF has no frame".into()));
    }
    Ok(plays_of_gif(decoder.repeat()))
}

/// libwebp's animation decoder, deleted on every path.
struct AnimDecoder(*mut libwebp_sys::WebPAnimDecoder);

impl Drop for AnimDecoder {
    fn drop(&mut self) {
        // SAFETY: created by WebPAnimDecoderNew, deleted once.
        unsafe { libwebp_sys::WebPAnimDecoderDelete(self.0) }
    }
}

impl AnimDecoder {
    /// Opens `data`, which must outlive the decoder, and checks its canvas
    /// and frame count against the header the limits were checked on.
    fn open(data: &[u8], probe: &Probe) -> Result<(Self, libwebp_sys::WebPAnimInfo), ImagingError> {
        use libwebp_sys as sys;
        let corrupt = |what: &str| ImagingError::Undecodable(format!("the WebP animation {what}"));
        // SAFETY: options and info are plain data libwebp initialises; the
        // decoder reads `data` only while the caller holds both.
        unsafe {
            let mut options: sys::WebPAnimDecoderOptions = std::mem::zeroed();
            if sys::WebPAnimDecoderOptionsInit(&mut options) == 0 {
                return Err(internal("libwebp demux version mismatch"));
            }
            options.color_mode = sys::WEBP_CSP_MODE::MODE_RGBA;
            options.use_threads = 0;
            let webp_data = sys::WebPData {
                bytes: data.as_ptr(),
                size: data.len(),
            };
            let decoder = sys::WebPAnimDecoderNew(&webp_data, &options);
            if decoder.is_null() {
                return Err(corrupt("is corrupt or truncated"));
            }
            let decoder = AnimDecoder(decoder);
            let mut info: sys::WebPAnimInfo = std::mem::zeroed();
            if sys::WebPAnimDecoderGetInfo(decoder.0, &mut info) == 0 {
                return Err(corrupt("has no readable header"));
            }
            if (info.canvas_width, info.canvas_height) != (probe.width, probe.height)
                || info.frame_count > probe.frames
            {
                return Err(corrupt("does not match its header"));
            }
            Ok((decoder, info))
        }
    }
}

fn webp_frames(
    data: &[u8],
    probe: &Probe,
    first_only: bool,
    each: &mut dyn FnMut(Frame) -> Result<(), ImagingError>,
) -> Result<Plays, ImagingError> {
    use libwebp_sys as sys;
    let (decoder, info) = AnimDecoder::open(data, probe)?;
    let len = probe.width as usize * probe.height as usize * 4;
    let mut previous_end = 0i32;
    // SAFETY: `data` outlives the decoder (both live to the end of this
    // function); each frame libwebp returns is a canvas of the header's size
    // in RGBA, valid until the next call, and copied out before it.
    unsafe {
        while sys::WebPAnimDecoderHasMoreFrames(decoder.0) != 0 {
            let mut buf: *mut u8 = std::ptr::null_mut();
            let mut end = 0i32;
            if sys::WebPAnimDecoderGetNext(decoder.0, &mut buf, &mut end) == 0 || buf.is_null() {
                return Err(ImagingError::Undecodable(
                    "the WebP animation has a frame that does not decode".into(),
                ));
            }
            let pixels = Pixels {
                data: std::slice::from_raw_parts(buf, len).to_vec(),
                width: probe.width,
                height: probe.height,
                channels: 4,
            };
            let duration_ms = end.saturating_sub(previous_end).max(0) as u32;
            previous_end = end;
            each(Frame { pixels, duration_ms })?;
            if first_only {
                break;
            }
        }
    }
    Ok(info.loop_count)
}

/// Encodes resized frames as an animated GIF or WebP. `tick` runs between
/// frames (the job's deadline).
pub fn encode(
    frames: Vec<Frame>,
    plays: Plays,
    format: ImageFormat,
    quality: u8,
    tick: &dyn Fn() -> Result<(), ImagingError>,
) -> Result<Vec<u8>, ImagingError> {
    match format {
        ImageFormat::Gif => encode_gif(frames, plays, tick),
        ImageFormat::Webp => encode_webp(&frames, plays, quality, tick),
        other => Err(internal(format!("{other} is not written animated"))),
    }
}

/// RGBA with GIF's one-bit alpha: half-transparent edges from the resampler
/// are cut at 50 % rather than all made opaque.
fn gif_rgba(p: Pixels) -> Vec<u8> {
    match p.channels {
        4 => {
            let mut d = p.data;
            for px in d.chunks_exact_mut(4) {
                px[3] = if px[3] >= 128 { 255 } else { 0 };
            }
            d
        }
        _ => p
            .data
            .chunks_exact(3)
            .flat_map(|c| [c[0], c[1], c[2], 255])
            .collect(),
    }
}

/// A GIF: a palette per frame (NeuQuant when a frame has more than 256
/// colours), every frame whole and cleared after it shows, so transparency
/// in a later frame never shows an earlier one. One frame is a still.
pub fn encode_gif(
    frames: Vec<Frame>,
    plays: Plays,
    tick: &dyn Fn() -> Result<(), ImagingError>,
) -> Result<Vec<u8>, ImagingError> {
    let first = frames.first().ok_or_else(|| internal("no frame to encode"))?;
    let too_wide = |_| internal("a GIF side is at most 65535 pixels");
    let w = u16::try_from(first.pixels.width).map_err(too_wide)?;
    let h = u16::try_from(first.pixels.height).map_err(too_wide)?;
    let animated = frames.len() > 1;
    let mut out = Vec::new();
    {
        let mut encoder = gif::Encoder::new(&mut out, w, h, &[]).map_err(internal)?;
        if animated {
            encoder.set_repeat(gif_repeat(plays)).map_err(internal)?;
        }
        for f in frames {
            tick()?;
            let mut rgba = gif_rgba(f.pixels);
            let mut frame = gif::Frame::from_rgba_speed(w, h, &mut rgba, GIF_QUANT_SPEED);
            if animated {
                frame.delay = u16::try_from(f.duration_ms.div_ceil(10)).unwrap_or(u16::MAX);
                frame.dispose = gif::DisposalMethod::Background;
            }
            encoder.write_frame(&frame).map_err(internal)?;
        }
    }
    Ok(out)
}

/// Browsers show a frame of 10 ms or less for 100 ms (GIFs of delay 0 were
/// made for that); WebP players do not, so the conversion writes it.
fn shown_ms(duration_ms: u32) -> i32 {
    if duration_ms <= 10 {
        100
    } else {
        i32::try_from(duration_ms).unwrap_or(i32::MAX)
    }
}

/// libwebp's animation encoder, deleted on every path.
struct AnimEncoder(*mut libwebp_sys::WebPAnimEncoder);

impl Drop for AnimEncoder {
    fn drop(&mut self) {
        // SAFETY: created by WebPAnimEncoderNewInternal, deleted once.
        unsafe { libwebp_sys::WebPAnimEncoderDelete(self.0) }
    }
}

/// An animated WebP through libwebp's animation encoder (which stores each
/// frame as the changed rectangle of the previous one), lossy at `quality`.
fn encode_webp(
    frames: &[Frame],
    plays: Plays,
    quality: u8,
    tick: &dyn Fn() -> Result<(), ImagingError>,
) -> Result<Vec<u8>, ImagingError> {
    use libwebp_sys as sys;
    let first = frames.first().ok_or_else(|| internal("no frame to encode"))?;
    let (w, h) = (first.pixels.width as i32, first.pixels.height as i32);
    // SAFETY: options, config, picture and data are plain data libwebp
    // initialises; every picture imports from a live frame buffer of
    // w × h × channels bytes and is freed after it is added; the assembled
    // data is copied out, then cleared.
    unsafe {
        let abi = sys::WebPGetMuxABIVersion();
        let mut options: sys::WebPAnimEncoderOptions = std::mem::zeroed();
        if sys::WebPAnimEncoderOptionsInitInternal(&mut options, abi) == 0 {
            return Err(internal("libwebp mux version mismatch"));
        }
        options.anim_params.loop_count = i32::try_from(plays).unwrap_or(0);
        let encoder = sys::WebPAnimEncoderNewInternal(w, h, &options, abi);
        if encoder.is_null() {
            return Err(internal("libwebp: no animation encoder"));
        }
        let encoder = AnimEncoder(encoder);
        let mut config = sys::WebPConfig::new().map_err(|()| internal("libwebp config"))?;
        config.quality = f32::from(quality);
        let mut timestamp = 0i32;
        for f in frames {
            tick()?;
            let mut picture = sys::WebPPicture::new().map_err(|()| internal("libwebp picture"))?;
            picture.width = w;
            picture.height = h;
            picture.use_argb = 1;
            let stride = w * i32::from(f.pixels.channels);
            let imported = if f.pixels.channels == 4 {
                sys::WebPPictureImportRGBA(&mut picture, f.pixels.data.as_ptr(), stride)
            } else {
                sys::WebPPictureImportRGB(&mut picture, f.pixels.data.as_ptr(), stride)
            };
            let added =
                imported != 0 && sys::WebPAnimEncoderAdd(encoder.0, &mut picture, timestamp, &config) != 0;
            sys::WebPPictureFree(&mut picture);
            if !added {
                return Err(internal("libwebp could not add a frame"));
            }
            timestamp = timestamp.saturating_add(shown_ms(f.duration_ms));
        }
        // The end time gives the last frame its duration.
        let mut data: sys::WebPData = std::mem::zeroed();
        if sys::WebPAnimEncoderAdd(encoder.0, std::ptr::null_mut(), timestamp, std::ptr::null()) == 0
            || sys::WebPAnimEncoderAssemble(encoder.0, &mut data) == 0
        {
            return Err(internal("libwebp could not assemble the animation"));
        }
        let out = std::slice::from_raw_parts(data.bytes, data.size).to_vec();
        sys::WebPDataClear(&mut data);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_loop_counts_map_between_gif_and_webp() {
        for plays in [0, 1, 2, 7] {
            assert_eq!(plays_of_gif(gif_repeat(plays)), plays);
        }
        assert_eq!(
            plays_of_gif(gif::Repeat::Finite(0)),
            1,
            "no NETSCAPE extension: once"
        );
        assert_eq!(plays_of_gif(gif::Repeat::Infinite), 0);
    }

    #[test]
    fn test_draw_keeps_the_canvas_under_transparent_pixels_and_clips() {
        let mut canvas = vec![9u8; 3 * 2 * 4];
        // A 2×1 frame at (2, 1): its second pixel is off the canvas.
        let frame = [1, 2, 3, 255, 4, 5, 6, 255];
        let r = Rect {
            left: 2,
            top: 1,
            width: 2,
            height: 1,
        };
        draw(&mut canvas, 3, &frame, r);
        assert_eq!(&canvas[20..24], &[1, 2, 3, 255]);
        assert!(canvas[..20].iter().all(|&v| v == 9));
        let hole = [0, 0, 0, 0];
        draw(&mut canvas, 3, &hole, Rect { width: 1, ..r });
        assert_eq!(
            &canvas[20..24],
            &[1, 2, 3, 255],
            "a transparent pixel draws nothing"
        );
        clear(&mut canvas, 3, r);
        assert_eq!(&canvas[20..24], &[0, 0, 0, 0]);
        assert!(
            canvas[..20].iter().all(|&v| v == 9),
            "cleared only the frame's rectangle"
        );
    }

    #[test]
    fn test_gif_alpha_is_cut_at_half() {
        let p = Pixels {
            data: vec![1, 1, 1, 127, 2, 2, 2, 128],
            width: 2,
            height: 1,
            channels: 4,
        };
        assert_eq!(gif_rgba(p), vec![1, 1, 1, 0, 2, 2, 2, 255]);
    }

    #[test]
    fn test_browsers_minimum_frame_time_is_written_for_webp() {
        assert_eq!(shown_ms(0), 100);
        assert_eq!(shown_ms(10), 100);
        assert_eq!(shown_ms(20), 20);
    }
}
