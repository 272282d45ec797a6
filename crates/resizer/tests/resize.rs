//! `POST /v1/resize` through the real binary: formats, fits, orientation,
//! alpha and negotiation, checked by decoding the output.

mod common;

use common::{Server, decode, heif_fixture, make_png_rgba, read_corpus, with_exif_orientation};

const INPUTS: [(&str, &str); 3] = [
    ("jpeg", "jpeg-256k/a01_BytheWater.jpg"),
    ("png", "png/c01_FallenLeaf.png"),
    ("webp", "webp/d01_Grey.webp"),
];

#[tokio::test]
async fn test_resize_every_format_pair_and_fit() {
    let server = Server::start();
    let (_, key) = server.customer().await;
    // All three inputs are 1600×1200.
    let expected = [
        ("contain", (267, 200)),
        ("cover", (300, 200)),
        ("fill", (300, 200)),
    ];
    for (in_name, path) in INPUTS {
        let input = read_corpus(path);
        for out in ["jpeg", "png", "webp"] {
            for (fit, (w, h)) in expected {
                let q = format!("width=300&height=200&fit={fit}&format={out}");
                let r = server.resize(Some(&key), &q, input.clone(), None).await;
                assert_eq!(
                    r.status,
                    200,
                    "{in_name}->{out} {fit}: {}",
                    String::from_utf8_lossy(&r.body)
                );
                assert_eq!(r.header("content-type").unwrap(), format!("image/{out}"));
                assert!(r.header("x-request-id").unwrap().starts_with("req_"));
                let d = decode(&r.body);
                assert_eq!(d.format, out, "{in_name}->{out} {fit}");
                assert_eq!((d.width, d.height), (w, h), "{in_name}->{out} {fit}");
            }
        }
    }
}

#[tokio::test]
async fn test_resize_content_is_the_picture_not_noise() {
    // A left-white / right-black PNG must stay left-light / right-dark after resize.
    let server = Server::start();
    let (_, key) = server.customer().await;
    let (w, h) = (200u32, 100u32);
    let mut rgba = Vec::new();
    for _y in 0..h {
        for x in 0..w {
            let v = if x < w / 2 { 255 } else { 0 };
            rgba.extend_from_slice(&[v, v, v, 255]);
        }
    }
    let input = make_png_rgba(w, h, &rgba);
    for out in ["jpeg", "png", "webp"] {
        let r = server
            .resize(
                Some(&key),
                &format!("width=100&format={out}"),
                input.clone(),
                None,
            )
            .await;
        assert_eq!(r.status, 200);
        let d = decode(&r.body);
        assert_eq!((d.width, d.height), (100, 50));
        let px = |x: usize, y: usize| d.pixels[(y * d.width as usize + x) * d.channels];
        assert!(px(10, 25) > 230, "{out}: left is {}", px(10, 25));
        assert!(px(90, 25) < 25, "{out}: right is {}", px(90, 25));
    }
}

#[tokio::test]
async fn test_resize_applies_exif_orientation_and_strips_metadata() {
    let server = Server::start();
    let (_, key) = server.customer().await;
    let rotated = with_exif_orientation(&read_corpus("jpeg-256k/a01_BytheWater.jpg"), 6);
    let r = server
        .resize(Some(&key), "width=300", rotated.clone(), None)
        .await;
    assert_eq!(r.status, 200);
    let d = decode(&r.body);
    // 1600×1200 stored, displayed 1200×1600 after a quarter turn.
    assert_eq!((d.width, d.height), (300, 400));
    assert!(
        !r.body.windows(6).any(|w| w == b"Exif\0\0"),
        "EXIF must be stripped"
    );
    // Every orientation yields the displayed size.
    for o in 1..=8u8 {
        let input = with_exif_orientation(&read_corpus("jpeg-256k/a01_BytheWater.jpg"), o);
        let r = server
            .resize(Some(&key), "width=160&height=160", input, None)
            .await;
        let d = decode(&r.body);
        let expected = if o >= 5 { (120, 160) } else { (160, 120) };
        assert_eq!((d.width, d.height), expected, "orientation {o}");
    }
}

#[tokio::test]
async fn test_resize_alpha_kept_or_flattened_on_white() {
    let server = Server::start();
    let (_, key) = server.customer().await;
    // Left half fully transparent red, right half opaque blue.
    let (w, h) = (64u32, 32u32);
    let mut rgba = Vec::new();
    for _y in 0..h {
        for x in 0..w {
            if x < w / 2 {
                rgba.extend_from_slice(&[255, 0, 0, 0]);
            } else {
                rgba.extend_from_slice(&[0, 0, 255, 255]);
            }
        }
    }
    let input = make_png_rgba(w, h, &rgba);
    let at = |d: &common::Decoded, x: usize, y: usize| -> Vec<u8> {
        let i = (y * d.width as usize + x) * d.channels;
        d.pixels[i..i + d.channels].to_vec()
    };
    let png = decode(
        &server
            .resize(Some(&key), "width=32&format=png", input.clone(), None)
            .await
            .body,
    );
    assert_eq!(png.channels, 4);
    assert_eq!(at(&png, 2, 8)[3], 0, "transparent stays transparent");
    assert_eq!(at(&png, 30, 8)[3], 255);
    let webp = decode(
        &server
            .resize(Some(&key), "width=32&format=webp", input.clone(), None)
            .await
            .body,
    );
    assert_eq!(webp.channels, 4, "WebP keeps alpha");
    assert!(at(&webp, 2, 8)[3] < 10);
    let jpeg = decode(
        &server
            .resize(Some(&key), "width=32&format=jpeg", input, None)
            .await
            .body,
    );
    let left = at(&jpeg, 2, 8);
    assert!(
        left.iter().all(|&c| c > 235),
        "transparent area flattened onto white: {left:?}"
    );
    let right = at(&jpeg, 30, 8);
    assert!(
        right[2] > 200 && right[0] < 40,
        "opaque blue stays blue: {right:?}"
    );
}

#[tokio::test]
async fn test_resize_format_auto_follows_accept_q_values() {
    let server = Server::start();
    let (_, key) = server.customer().await;
    let jpeg = read_corpus("jpeg-256k/a02_ColdRipple.jpg");
    let cases = [
        (None, "image/jpeg"),
        (Some("image/avif,image/webp,*/*"), "image/avif"),
        (Some("*/*"), "image/jpeg"),
        (Some("image/avif;q=0,image/webp,*/*"), "image/webp"),
        (Some("image/webp,image/*;q=0.8"), "image/webp"),
        (Some("image/png"), "image/png"),
    ];
    for (accept, expected) in cases {
        let r = server.resize(Some(&key), "width=100", jpeg.clone(), accept).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type").as_deref(), Some(expected), "{accept:?}");
        assert_eq!(decode(&r.body).format, &expected[6..]);
    }
    // Portrait input, contain within a square.
    let d = decode(
        &server
            .resize(Some(&key), "width=160&height=160", jpeg, None)
            .await
            .body,
    );
    assert_eq!((d.width, d.height), (120, 160));
}

/// What current browsers send for images (Chrome 131, Firefox 133, Safari 18;
/// Safari 15 predates AVIF).
const BROWSERS: [(&str, &str); 4] = [
    (
        "chrome",
        "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
    ),
    (
        "firefox",
        "image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5",
    ),
    (
        "safari",
        "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5",
    ),
    (
        "safari15",
        "image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5",
    ),
];

#[tokio::test]
async fn test_heic_and_avif_inputs_and_auto_format_for_browsers() {
    let server = Server::start();
    let (_, key) = server.customer().await;
    let heic = heif_fixture("photo.heic");
    // No Accept (an app): HEIC is read, never written, so auto answers JPEG.
    let r = server.resize(Some(&key), "width=160", heic.clone(), None).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type").as_deref(), Some("image/jpeg"));
    assert_eq!(r.header("vary").as_deref(), Some("accept"));
    let d = decode(&r.body);
    assert_eq!((d.width, d.height), (160, 120));
    for (browser, accept) in BROWSERS {
        for (name, input) in [
            ("heic", heic.clone()),
            ("jpeg", read_corpus("jpeg-256k/a02_ColdRipple.jpg")),
        ] {
            let r = server.resize(Some(&key), "width=120", input, Some(accept)).await;
            assert_eq!(r.status, 200, "{browser} {name}");
            let expected = if browser == "safari15" { "webp" } else { "avif" };
            assert_eq!(
                r.header("content-type").unwrap(),
                format!("image/{expected}"),
                "{browser} {name}"
            );
            assert_eq!(r.header("vary").as_deref(), Some("accept"));
            let d = decode(&r.body);
            assert_eq!((d.format, d.width), (expected, 120), "{browser} {name}");
        }
    }
    // An AVIF with a rotation, asked for by name: the displayed size comes out.
    let r = server
        .resize(
            Some(&key),
            "width=60&format=png",
            heif_fixture("rot90.avif"),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("vary"), None);
    let d = decode(&r.body);
    assert_eq!((d.format, d.width, d.height), ("png", 60, 80));
    // HEIC is not an output.
    server
        .resize(Some(&key), "width=60&format=heic", heic.clone(), None)
        .await
        .assert_error(400, "invalid_parameter");
    // A HEIC whose header claims 60000×60000 is refused from the header.
    let mut bomb = heic;
    let at = bomb.windows(4).position(|w| w == b"ispe").unwrap();
    bomb[at + 8..at + 16].copy_from_slice(&[0, 0, 0xEA, 0x60, 0, 0, 0xEA, 0x60]);
    server
        .resize(Some(&key), "width=60", bomb, None)
        .await
        .assert_error(422, "too_many_pixels");
}

/// A 40×20 GIF of three frames shown 100, 200 and 300 ms, played twice
/// (loop count 1): the first half transparent, half red; then blue; then red.
fn animated_gif() -> Vec<u8> {
    let palette = [0u8, 0, 0, 255, 0, 0, 0, 0, 255];
    let mut input = Vec::new();
    {
        let mut e = gif::Encoder::new(&mut input, 40, 20, &palette).unwrap();
        e.set_repeat(gif::Repeat::Finite(1)).unwrap();
        let half: Vec<u8> = (0..40 * 20).map(|p| if p % 40 < 20 { 0 } else { 1 }).collect();
        for (pixels, transparent, delay) in [
            (half, Some(0), 10),
            (vec![2; 800], None, 20),
            (vec![1; 800], None, 30),
        ] {
            let mut f = gif::Frame::from_indexed_pixels(40, 20, pixels, transparent);
            f.delay = delay;
            e.write_frame(&f).unwrap();
        }
    }
    input
}

/// What an independent reader says of an image: `gifsicle --info` for GIF,
/// libwebp's `webpinfo` for WebP (both installed by scripts/setup.sh).
fn info(tool: &str, image: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("image");
    std::fs::write(&path, image).unwrap();
    let mut cmd = std::process::Command::new(tool);
    if tool == "gifsicle" {
        cmd.arg("--info");
    }
    let out = cmd
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("{tool} (scripts/setup.sh): {e}"));
    assert!(out.status.success(), "{tool} refused our image");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An animated GIF stays animated: GIF for clients naming nothing newer,
/// animated WebP (never AVIF, written still) for browsers, every frame's
/// duration and the loop count kept, as independent readers see them.
#[tokio::test]
async fn test_animated_gif_stays_animated() {
    let server = Server::start();
    let (_, key) = server.customer().await;
    let input = animated_gif();
    let r = server.resize(Some(&key), "width=20", input.clone(), None).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type").as_deref(), Some("image/gif"));
    assert_eq!(r.header("vary").as_deref(), Some("accept"));
    let gif = info("gifsicle", &r.body);
    assert!(
        gif.contains("3 images") && gif.contains("logical screen 20x10"),
        "{gif}"
    );
    assert!(gif.contains("loop count 1"), "{gif}");
    for delay in ["delay 0.10s", "delay 0.20s", "delay 0.30s"] {
        assert!(gif.contains(delay), "{delay}: {gif}");
    }
    for (browser, accept) in BROWSERS {
        let r = server
            .resize(Some(&key), "width=20", input.clone(), Some(accept))
            .await;
        assert_eq!(
            r.header("content-type").as_deref(),
            Some("image/webp"),
            "{browser}"
        );
        let webp = info("webpinfo", &r.body);
        let field = |name: &str| -> Vec<String> {
            let lines = webp
                .lines()
                .filter_map(|l| l.split_once(':').filter(|(k, _)| k.trim() == name));
            lines.map(|(_, v)| v.trim().to_string()).collect()
        };
        assert!(webp.contains("Canvas size 20 x 10"), "{webp}");
        assert_eq!(field("Loop count"), ["2"], "{webp}");
        assert_eq!(field("Duration"), ["100", "200", "300"], "{webp}");
    }
    // One GIF and four WebP animations of three frames each, counted by the worker.
    let metrics = server.metrics().await;
    let value = |name: &str| {
        let line = metrics
            .lines()
            .find(|l| l.strip_prefix(name).is_some_and(|r| r.starts_with(' ')));
        line.and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
    };
    assert_eq!(value("resizer_worker_animations_total"), Some(5.0), "{metrics}");
    assert_eq!(value("resizer_worker_animation_frames_total"), Some(15.0));
}

/// The still of an animation: asked with `frames=first`, or in a format that
/// cannot animate, it is the first frame (transparency kept).
#[tokio::test]
async fn test_animation_still_is_its_first_frame() {
    let server = Server::start();
    let (_, key) = server.customer().await;
    let input = animated_gif();
    for (query, accept, mime) in [
        ("width=20&format=png", None, "image/png"),
        ("width=20&frames=first", Some(BROWSERS[0].1), "image/avif"),
        ("width=20&frames=first&format=webp", None, "image/webp"),
    ] {
        let r = server.resize(Some(&key), query, input.clone(), accept).await;
        assert_eq!(r.status, 200, "{query}: {}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.header("content-type").as_deref(), Some(mime), "{query}");
        let d = decode(&r.body);
        assert_eq!((d.width, d.height, d.channels), (20, 10, 4), "{query}");
        // AVIF's alpha is lossy too: 0 may come back as 1.
        let alpha = d.pixels[(5 * 20 + 2) * 4 + 3];
        assert!(alpha <= 4, "{query}: the transparent left half has alpha {alpha}");
        let red = &d.pixels[(5 * 20 + 17) * 4..][..4];
        assert!(
            red[0] > 200 && red[1] < 40 && red[2] < 40 && red[3] == 255,
            "{query}: {red:?}"
        );
    }
    server
        .resize(Some(&key), "width=20&frames=2", input, None)
        .await
        .assert_error(400, "invalid_parameter");
}

/// 10,000 frames of 1×1: refused from the header (the frame limit) in
/// bounded time; its still is one frame's work.
#[tokio::test]
async fn test_frame_bomb_is_refused_before_decoding() {
    let server = Server::start();
    let (_, key) = server.customer().await;
    let mut bomb = Vec::new();
    {
        let mut e = gif::Encoder::new(&mut bomb, 1, 1, &[0, 0, 0, 255, 255, 255]).unwrap();
        for _ in 0..10_000 {
            e.write_frame(&gif::Frame::from_indexed_pixels(1, 1, vec![1], None))
                .unwrap();
        }
    }
    let r = server.resize(Some(&key), "width=1", bomb.clone(), None).await;
    r.assert_error(422, "too_many_pixels");
    let body = String::from_utf8_lossy(&r.body);
    assert!(
        body.contains("10000 frames") && body.contains("frames=first"),
        "{body}"
    );
    let r = server
        .resize(Some(&key), "width=1&frames=first", bomb, None)
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

/// Usage and audit records name the new formats on both sides (the audit is
/// read from the roll-up, so the test waits, bounded, for it to catch up).
#[tokio::test]
async fn test_audit_names_the_new_formats() {
    let env = [
        ("RESIZER_USAGE__SEGMENT_MAX_AGE_MS", "200"),
        ("RESIZER_USAGE__AGGREGATE_EVERY_MS", "100"),
    ];
    let server = Server::start_with(common::Options {
        env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..common::Options::default()
    });
    let (tenant, key) = server.customer().await;
    let heic = heif_fixture("photo.heic");
    let chrome = Some(BROWSERS[0].1);
    assert_eq!(
        server
            .resize(Some(&key), "width=40", heic.clone(), None)
            .await
            .status,
        200
    );
    assert_eq!(
        server
            .resize(Some(&key), "width=40", heic.clone(), chrome)
            .await
            .status,
        200
    );
    let avif = heif_fixture("photo.avif");
    assert_eq!(
        server
            .resize(Some(&key), "width=40&format=png", avif, None)
            .await
            .status,
        200
    );
    let expected = [("heic", "jpeg"), ("heic", "avif"), ("avif", "png")];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let audit: serde_json::Value = server
            .client
            .get(format!("{}/admin/v1/audit?tenant={tenant}", server.admin))
            .bearer_auth(common::ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let pairs: Vec<(String, String)> = audit["records"]
            .as_array()
            .map(|records| {
                records
                    .iter()
                    .map(|r| {
                        (
                            r["input_format"].as_str().unwrap_or("").to_string(),
                            r["output_format"].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let seen = expected
            .iter()
            .all(|(i, o)| pairs.contains(&(i.to_string(), o.to_string())));
        if seen {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "audit after 20 s: {pairs:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn test_resize_never_enlarges_unless_asked() {
    let server = Server::start();
    let (_, key) = server.customer().await;
    let input = read_corpus("webp/d02_Dune.webp");
    let d = decode(
        &server
            .resize(Some(&key), "width=3200", input.clone(), None)
            .await
            .body,
    );
    assert_eq!((d.width, d.height), (1600, 1200));
    let d = decode(
        &server
            .resize(Some(&key), "width=2000&enlarge=true", input, None)
            .await
            .body,
    );
    assert_eq!((d.width, d.height), (2000, 1500));
}

#[tokio::test]
async fn test_resize_large_jpeg_uses_quality() {
    let server = Server::start();
    let (_, key) = server.customer().await;
    let input = read_corpus("jpeg-1m/b01_EveningGlow.jpg");
    let low = server
        .resize(Some(&key), "width=800&quality=20", input.clone(), None)
        .await;
    let high = server
        .resize(Some(&key), "width=800&quality=95", input, None)
        .await;
    assert_eq!((low.status, high.status), (200, 200));
    assert!(
        low.body.len() * 2 < high.body.len(),
        "{} vs {}",
        low.body.len(),
        high.body.len()
    );
    assert_eq!(decode(&low.body).width, 800);
}

/// A JPEG of four colour blocks (64×16 each) whose sRGB colours were stored in
/// `profile`'s space, with the profile embedded when `tag` is set.
fn colour_blocks_jpeg(srgb: &[[u8; 3]; 4], profile: &moxcms::ColorProfile, tag: bool) -> Vec<u8> {
    use moxcms::{ColorProfile, Layout, TransformOptions};
    let t = ColorProfile::new_srgb()
        .create_transform_8bit(Layout::Rgb, profile, Layout::Rgb, TransformOptions::default())
        .unwrap();
    let (w, h) = (256usize, 16usize);
    let mut px = Vec::with_capacity(w * h * 3);
    for _ in 0..h {
        for x in 0..w {
            px.extend_from_slice(&srgb[x / 64]);
        }
    }
    let mut stored = vec![0u8; px.len()];
    t.transform(&px, &mut stored).unwrap();
    let image = turbojpeg::Image {
        pixels: stored.as_slice(),
        width: w,
        pitch: w * 3,
        height: h,
        format: turbojpeg::PixelFormat::RGB,
    };
    let mut jpeg = turbojpeg::compress(image, 98, turbojpeg::Subsamp::None)
        .unwrap()
        .to_vec();
    if tag {
        // APP2 ICC_PROFILE, one chunk, right after SOI.
        let icc = profile.encode().unwrap();
        let mut seg = b"ICC_PROFILE\0\x01\x01".to_vec();
        seg.extend_from_slice(&icc);
        let mut app2 = vec![0xFF, 0xE2];
        app2.extend_from_slice(&u16::try_from(seg.len() + 2).unwrap().to_be_bytes());
        app2.extend_from_slice(&seg);
        jpeg.splice(2..2, app2);
    }
    jpeg
}

#[tokio::test]
async fn test_embedded_p3_and_adobe_rgb_profiles_come_out_as_srgb() {
    let server = Server::start();
    let (_, key) = server.customer().await;
    let srgb = [[200u8, 60, 40], [40, 170, 80], [50, 90, 200], [230, 200, 60]];
    for profile in [
        moxcms::ColorProfile::new_display_p3(),
        moxcms::ColorProfile::new_adobe_rgb(),
    ] {
        let mut worst = [0u32; 2];
        for (i, tag) in [true, false].into_iter().enumerate() {
            let input = colour_blocks_jpeg(&srgb, &profile, tag);
            let r = server
                .resize(Some(&key), "width=128&format=png", input, None)
                .await;
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
            let d = decode(&r.body);
            assert_eq!((d.width, d.height), (128, 8));
            // The centre pixel of each 32-pixel block, against the sRGB original.
            for (b, want) in srgb.iter().enumerate() {
                let at = (4 * 128 + b * 32 + 16) * d.channels;
                for (got, want) in d.pixels[at..at + 3].iter().zip(want) {
                    worst[i] = worst[i].max(u32::from(got.abs_diff(*want)));
                }
            }
        }
        // Tagged: converted back to sRGB (JPEG and 8-bit rounding only). Untagged: the
        // same numbers read as sRGB are visibly off, so the tag is what changed them.
        assert!(worst[0] <= 6, "tagged input off by {} levels", worst[0]);
        assert!(worst[1] >= 12, "untagged input off by only {} levels", worst[1]);
    }
}
