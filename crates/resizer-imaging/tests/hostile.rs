//! Images made to hurt: a compressed colour profile that inflates to 100 MB,
//! a progressive JPEG of hundreds of repeated scans, a job whose deadline has
//! passed. Memory is measured by counting this test binary's allocations.

use resizer_core::ImageFormat;
use resizer_core::PublicError;
use resizer_core::params::{Fit, FormatChoice, ResizeParams};
use resizer_imaging::{ImagingError, Limits, Pipeline};
use resizer_testing::alloc::{Counting, peak_during};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn params(width: u32) -> ResizeParams {
    ResizeParams {
        width: Some(width),
        height: None,
        fit: Fit::Contain,
        format: FormatChoice::Auto,
        quality: None,
        enlarge: false,
        frames: resizer_core::params::Frames::All,
    }
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn chunk(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(body);
    let mut crc_input = kind.to_vec();
    crc_input.extend_from_slice(body);
    out.extend_from_slice(&crc32(&crc_input).to_be_bytes());
    out
}

/// A small RGB PNG with `extra` chunks inserted right after IHDR.
fn png_with(width: u32, height: u32, extra: &[Vec<u8>]) -> Vec<u8> {
    let mut plain = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut plain, width, height);
        enc.set_color(png::ColorType::Rgb);
        let mut w = enc.write_header().unwrap();
        let px: Vec<u8> = (0..width * height * 3).map(|i| (i * 7 % 251) as u8).collect();
        w.write_image_data(&px).unwrap();
    }
    let ihdr_end = 8 + 25;
    let mut out = plain[..ihdr_end].to_vec();
    for c in extra {
        out.extend_from_slice(c);
    }
    out.extend_from_slice(&plain[ihdr_end..]);
    out
}

#[test]
fn test_png_profile_bomb_is_refused_before_it_is_inflated() {
    let zeros = vec![0u8; 100 << 20];
    let compressed = miniz_oxide::deflate::compress_to_vec_zlib(&zeros, 9);
    drop(zeros);
    assert!(compressed.len() < 1 << 20, "{} bytes", compressed.len());
    let mut body = b"bomb\0\0".to_vec();
    body.extend_from_slice(&compressed);
    // And a compressed text chunk of the same kind, which nothing should inflate.
    let mut text = b"Comment\0\0".to_vec();
    text.extend_from_slice(&compressed);
    let png = png_with(8, 8, &[chunk(b"iCCP", &body), chunk(b"zTXt", &text)]);
    let mut pipeline = Pipeline::try_new().unwrap();
    let (out, peak) = peak_during(|| pipeline.run(&png, &params(4), ImageFormat::Png, &Limits::default()));
    let out = out.unwrap();
    assert_eq!((out.width, out.height), (4, 4));
    // The profile cap is 4 MiB (inflating to it may double the buffer once);
    // before the fix this held the whole 100 MB.
    assert!(peak < 16 << 20, "resizing an 8x8 PNG held {peak} bytes at once");
}

#[test]
fn test_png_profile_of_a_real_size_is_still_read() {
    let profile = vec![7u8; 3000];
    let mut body = b"real\0\0".to_vec();
    body.extend_from_slice(&miniz_oxide::deflate::compress_to_vec_zlib(&profile, 6));
    let png = png_with(4, 4, &[chunk(b"iCCP", &body)]);
    assert_eq!(
        resizer_imaging::color::embedded_profile(&png, ImageFormat::Png),
        Some(profile)
    );
}

/// Splits a JPEG at its start-of-scan markers: the part before the first
/// scan, and each scan (SOS segment and entropy-coded data) in order.
fn scans(jpeg: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let sos: Vec<usize> = (0..jpeg.len() - 1)
        .filter(|&i| jpeg[i] == 0xFF && jpeg[i + 1] == 0xDA)
        .collect();
    let end = jpeg.len() - 2; // EOI
    let mut out = Vec::new();
    for (n, &start) in sos.iter().enumerate() {
        let stop = sos.get(n + 1).copied().unwrap_or(end);
        out.push(jpeg[start..stop].to_vec());
    }
    (jpeg[..sos[0]].to_vec(), out)
}

fn progressive_jpeg(side: usize) -> Vec<u8> {
    let px: Vec<u8> = (0..side * side * 3).map(|i| ((i * 13) % 255) as u8).collect();
    let image = turbojpeg::Image {
        pixels: px.as_slice(),
        width: side,
        pitch: side * 3,
        height: side,
        format: turbojpeg::PixelFormat::RGB,
    };
    let mut c = turbojpeg::Compressor::new().unwrap();
    c.set_quality(80).unwrap();
    c.set_progressive(true).unwrap();
    c.compress_to_vec(image).unwrap()
}

#[test]
fn test_a_progressive_jpeg_of_repeated_scans_is_stopped_at_the_scan_limit() {
    let jpeg = progressive_jpeg(256);
    let (head, scans) = scans(&jpeg);
    assert!(scans.len() > 2 && scans.len() < 20, "{} scans", scans.len());
    let mut pipeline = Pipeline::try_new().unwrap();
    // The honest file decodes.
    pipeline
        .run(&jpeg, &params(64), ImageFormat::Jpeg, &Limits::default())
        .unwrap();
    // The same scans followed by the last one 500 more times.
    let mut crafted = head;
    for s in &scans {
        crafted.extend_from_slice(s);
    }
    for _ in 0..500 {
        crafted.extend_from_slice(scans.last().unwrap());
    }
    crafted.extend_from_slice(&[0xFF, 0xD9]);
    match pipeline.run(&crafted, &params(64), ImageFormat::Jpeg, &Limits::default()) {
        Err(ImagingError::Undecodable(message)) => {
            assert!(
                message.contains("scans"),
                "refused, but not for its scans: {message}"
            )
        }
        other => panic!("a JPEG of {} scans was not stopped: {other:?}", scans.len() + 500),
    }
    // The thread's decoder is still good for the next job.
    pipeline
        .run(&jpeg, &params(64), ImageFormat::Jpeg, &Limits::default())
        .unwrap();
}

#[test]
fn test_a_job_past_its_deadline_stops_at_the_next_stage() {
    let jpeg = progressive_jpeg(256);
    let mut pipeline = Pipeline::try_new().unwrap();
    let past = std::time::Instant::now();
    let result = pipeline.run_until(
        &jpeg,
        &params(64),
        ImageFormat::Jpeg,
        &Limits::default(),
        Some(past),
    );
    assert!(
        matches!(result, Err(ImagingError::OverBudget(_))),
        "a job whose deadline had passed ran: {:?}",
        result.map(|o| o.width)
    );
    assert_eq!(
        ImagingError::OverBudget("decoding").code(),
        resizer_core::ErrorCode::DeadlineExceeded
    );
    // With time left it runs, and the same thread serves the next job.
    let later = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let out = pipeline
        .run_until(
            &jpeg,
            &params(64),
            ImageFormat::Jpeg,
            &Limits::default(),
            Some(later),
        )
        .unwrap();
    assert_eq!(out.width, 64);
}

/// Removes every quantization table (DQT segment) from a JPEG: an
/// "abbreviated" stream that relies on tables loaded by an earlier image.
fn without_quantization_tables(jpeg: &[u8]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    let mut i = 2;
    while i + 4 <= jpeg.len() && jpeg[i] == 0xFF && jpeg[i + 1] != 0xDA {
        let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        if jpeg[i + 1] != 0xDB {
            out.extend_from_slice(&jpeg[i..i + 2 + len]);
        }
        i += 2 + len;
    }
    out.extend_from_slice(&jpeg[i..]);
    out
}

/// Found by the `pipeline_jpeg` fuzz target: a reused libjpeg-turbo handle
/// keeps the previous image's tables, so a JPEG without its own decoded with
/// another job's (another tenant's) tables instead of being refused, and the
/// answer to one request depended on which request the thread ran before.
#[test]
fn test_a_jpeg_without_tables_does_not_borrow_the_previous_jobs() {
    let complete = progressive_jpeg(64);
    let abbreviated = without_quantization_tables(&complete);
    assert!(abbreviated.len() < complete.len());
    let mut fresh = Pipeline::try_new().unwrap();
    let alone = fresh.run(&abbreviated, &params(32), ImageFormat::Jpeg, &Limits::default());
    assert!(matches!(alone, Err(ImagingError::Undecodable(_))), "{alone:?}");
    let mut reused = Pipeline::try_new().unwrap();
    reused
        .run(&complete, &params(32), ImageFormat::Jpeg, &Limits::default())
        .unwrap();
    let after = reused.run(&abbreviated, &params(32), ImageFormat::Jpeg, &Limits::default());
    assert!(matches!(after, Err(ImagingError::Undecodable(_))), "{after:?}");
}
