//! Times each stage of both JPEG paths on one corpus image, for profiling.
//!
//! `cargo run --release -p resizer-imaging --example stages -- FILE.jpg`

use std::time::Instant;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use turbojpeg::{PixelFormat, ScalingFactor, Subsamp};

fn time<T>(label: &str, n: u32, mut f: impl FnMut() -> T) -> T {
    let mut out = f();
    let t = Instant::now();
    for _ in 0..n {
        out = f();
    }
    println!(
        "{label:<40} {:>8.3} ms",
        t.elapsed().as_secs_f64() * 1000.0 / f64::from(n)
    );
    out
}

fn main() {
    let path = std::env::args().nth(1).expect("a JPEG file");
    let data = std::fs::read(&path).unwrap();
    let n = 50;
    let mut dec = turbojpeg::Decompressor::new().unwrap();
    let header = dec.read_header(&data).unwrap();
    println!("{path}: {}x{} {:?}", header.width, header.height, header.subsamp);
    dec.set_scaling_factor(ScalingFactor::ONE_HALF).unwrap();
    let s = header.scaled(ScalingFactor::ONE_HALF);
    let (w, h) = (s.width, s.height);
    let (ow, oh) = (320u32, 240u32);
    let rgb = time("decode 1/2 to RGB", n, || {
        let mut px = vec![0u8; w * h * 3];
        dec.decompress(
            &data,
            turbojpeg::Image {
                pixels: px.as_mut_slice(),
                width: w,
                pitch: w * 3,
                height: h,
                format: PixelFormat::RGB,
            },
        )
        .unwrap();
        px
    });
    let yuv_len = turbojpeg::yuv_pixels_len(w, 1, h, header.subsamp).unwrap();
    let yuv = time("decode 1/2 to YUV planes", n, || {
        let mut px = vec![0u8; yuv_len];
        dec.decompress_to_yuv(
            &data,
            turbojpeg::YuvImage {
                pixels: px.as_mut_slice(),
                width: w,
                align: 1,
                height: h,
                subsamp: header.subsamp,
            },
        )
        .unwrap();
        px
    });
    let mut resizer = Resizer::new();
    let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    let out_rgb = time("resize RGB (U8x3) to 320x240", n, || {
        let src = ImageRef::new(w as u32, h as u32, &rgb, PixelType::U8x3).unwrap();
        let mut dst = Image::new(ow, oh, PixelType::U8x3);
        resizer.resize(&src, &mut dst, &opts).unwrap();
        dst.into_vec()
    });
    let (cw, ch) = match header.subsamp {
        Subsamp::Sub2x2 => (w.div_ceil(2), h.div_ceil(2)),
        _ => (w, h),
    };
    let y_len = w.div_ceil(2) * 2 * h.div_ceil(2) * 2;
    let y_len = if header.subsamp == Subsamp::Sub2x2 {
        y_len
    } else {
        w * h
    };
    let (yw, yh) = if header.subsamp == Subsamp::Sub2x2 {
        (w.div_ceil(2) * 2, h.div_ceil(2) * 2)
    } else {
        (w, h)
    };
    let planes = time("resize Y + Cb + Cr planes (U8)", n, || {
        let mut outs = Vec::new();
        for (plane, pw, ph, tw, th) in [
            (&yuv[..y_len], yw, yh, ow, oh),
            (&yuv[y_len..y_len + cw * ch], cw, ch, ow / 2, oh / 2),
            (&yuv[y_len + cw * ch..], cw, ch, ow / 2, oh / 2),
        ] {
            let src = ImageRef::new(pw as u32, ph as u32, plane, PixelType::U8).unwrap();
            let mut dst = Image::new(tw, th, PixelType::U8);
            resizer.resize(&src, &mut dst, &opts).unwrap();
            outs.push(dst.into_vec());
        }
        outs
    });
    let mut enc = turbojpeg::Compressor::new().unwrap();
    enc.set_quality(80).unwrap();
    enc.set_subsamp(Subsamp::Sub2x2).unwrap();
    time("encode RGB 320x240", n, || {
        enc.compress_to_vec(turbojpeg::Image {
            pixels: out_rgb.as_slice(),
            width: 320,
            pitch: 960,
            height: 240,
            format: PixelFormat::RGB,
        })
        .unwrap()
    });
    time("encode planes 320x240", n, || {
        enc.compress_yuv_planes_to_owned(&turbojpeg::YuvPlanesImage {
            y_plane: planes[0].as_slice(),
            u_plane: planes[1].as_slice(),
            v_plane: planes[2].as_slice(),
            width: 320,
            height: 240,
            y_stride: 320,
            u_stride: 160,
            v_stride: 160,
            subsamp: Subsamp::Sub2x2,
        })
        .unwrap()
    });
}
