//! Reads what the pixel limit and the colour stage need from a HEIF file
//! (AVIF, HEIC) without decoding it: the brand, the primary item's type and
//! declared size (`ispe`), its rotation (`irot`) and its ICC profile (`colr`).
//!
//! HEIF is ISO-BMFF: boxes of `size, type, body`. The still image is an *item*
//! named by `pitm`; `iinf` gives each item's type, `iprp/ipco` lists properties
//! and `ipma` associates them with items. A grid (the iPhone's 512×512 HEVC
//! tiles) is an item of type `grid` whose own `ispe` is the whole picture, so
//! the limit is checked on the size the decoder will assemble. Only the boxes
//! named here are read, each bounded by its parent: no recursion, no allocation
//! beyond the property list.

use resizer_core::ImageFormat;

use crate::error::{ImagingError, truncated};
use crate::probe::{be16, be32};

/// What a HEIF header says about its primary image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heif {
    /// AVIF or HEIC.
    pub format: ImageFormat,
    /// Declared width, before rotation.
    pub width: u32,
    /// Declared height, before rotation.
    pub height: u32,
    /// Quarter turns anticlockwise (`irot`), 0–3; applied by the decoder.
    pub quarter_turns: u8,
    /// Byte range of the ICC profile in the file, if the item has one.
    pub icc: Option<std::ops::Range<usize>>,
}

/// Brands that name a HEIF still image, and the codec they imply.
fn brand_format(brand: &[u8]) -> Option<Option<ImageFormat>> {
    match brand {
        b"avif" | b"avis" => Some(Some(ImageFormat::Avif)),
        b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" => Some(Some(ImageFormat::Heic)),
        b"mif1" | b"msf1" => Some(None),
        _ => None,
    }
}

/// The format the `ftyp` box's brands name, `Some(None)` for a generic HEIF
/// brand (decided by the primary item's codec), `None` when not HEIF.
pub fn sniff(d: &[u8]) -> Option<Option<ImageFormat>> {
    if d.get(4..8) != Some(b"ftyp") {
        return None;
    }
    let size = be32(d, 0)? as usize;
    let body = d.get(8..size.min(d.len()).max(8))?;
    let mut generic = false;
    let brands = body.chunks_exact(4).enumerate().filter(|(i, _)| *i != 1);
    for (_, brand) in brands {
        match brand_format(brand) {
            Some(Some(format)) => return Some(Some(format)),
            Some(None) => generic = true,
            None => {}
        }
    }
    generic.then_some(None)
}

/// One box: its type and the byte range of its body.
#[derive(Debug, Clone, Copy)]
struct BoxRef<'a> {
    kind: &'a [u8],
    start: usize,
    end: usize,
}

fn be64(d: &[u8], off: usize) -> Option<u64> {
    d.get(off..off + 8)
        .map(|b| u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
}

/// The boxes directly inside `d[start..end]`; stops at the first one that
/// does not fit (a truncated file is the decoder's to refuse).
fn children(d: &[u8], start: usize, end: usize) -> Vec<BoxRef<'_>> {
    let mut out = Vec::new();
    let mut pos = start;
    while pos + 8 <= end {
        let Some(size) = be32(d, pos) else { break };
        let (header, size) = match size {
            0 => (8, (end - pos) as u64),
            1 => match be64(d, pos + 8) {
                Some(large) => (16, large),
                None => break,
            },
            n => (8, u64::from(n)),
        };
        let Some(box_end) = usize::try_from(size).ok().and_then(|s| pos.checked_add(s)) else {
            break;
        };
        if size < header as u64 || box_end > end {
            break;
        }
        out.push(BoxRef {
            kind: &d[pos + 4..pos + 8],
            start: pos + header,
            end: box_end,
        });
        pos = box_end;
    }
    out
}

fn find<'a>(boxes: &[BoxRef<'a>], kind: &[u8]) -> Option<BoxRef<'a>> {
    boxes.iter().copied().find(|b| b.kind == kind)
}

fn undecodable(what: &str) -> ImagingError {
    ImagingError::Undecodable(format!("the HEIF header {what}"))
}

/// Reads the primary item's header. `Undecodable` when a box the decoder
/// needs is missing or malformed.
pub fn probe(d: &[u8]) -> Result<Heif, ImagingError> {
    let brand = sniff(d).ok_or_else(|| truncated("HEIF"))?;
    let top = children(d, 0, d.len());
    let meta = find(&top, b"meta").ok_or_else(|| undecodable("has no meta box"))?;
    // `meta` is a full box: four bytes of version and flags before its children.
    let meta = children(d, meta.start + 4, meta.end);
    let pitm = find(&meta, b"pitm").ok_or_else(|| undecodable("names no primary item"))?;
    let primary = if d.get(pitm.start) == Some(&0) {
        be16(d, pitm.start + 4).map(u32::from)
    } else {
        be32(d, pitm.start + 4)
    }
    .ok_or_else(|| truncated("HEIF"))?;
    let item_type = item_type(d, &meta, primary)?;
    let format = match (&item_type, brand) {
        (b"av01", _) => ImageFormat::Avif,
        (b"hvc1", _) => ImageFormat::Heic,
        (b"grid", Some(format)) => format,
        _ => {
            return Err(ImagingError::UnsupportedFormat(format!(
                "HEIF items of type {:?} are not supported",
                String::from_utf8_lossy(&item_type)
            )));
        }
    };
    let props = properties(d, &meta, primary)?;
    let ispe = find(&props, b"ispe").ok_or_else(|| undecodable("gives the primary item no size"))?;
    let width = be32(d, ispe.start + 4).ok_or_else(|| truncated("HEIF"))?;
    let height = be32(d, ispe.start + 8).ok_or_else(|| truncated("HEIF"))?;
    let quarter_turns = find(&props, b"irot")
        .and_then(|b| d.get(b.start))
        .map_or(0, |a| a & 3);
    let icc = props
        .iter()
        .filter(|b| b.kind == b"colr" && b.end >= b.start + 4)
        .find(|b| matches!(&d[b.start..b.start + 4], b"prof" | b"rICC"))
        .map(|b| b.start + 4..b.end);
    Ok(Heif {
        format,
        width,
        height,
        quarter_turns,
        icc,
    })
}

/// The item type (`av01`, `hvc1`, `grid`, …) of item `id`, from `iinf`.
fn item_type(d: &[u8], meta: &[BoxRef<'_>], id: u32) -> Result<[u8; 4], ImagingError> {
    let iinf = find(meta, b"iinf").ok_or_else(|| undecodable("has no item list"))?;
    let first = if d.get(iinf.start) == Some(&0) { 6 } else { 8 };
    for infe in children(d, iinf.start + first, iinf.end) {
        if infe.kind != b"infe" {
            continue;
        }
        let d = &d[..infe.end];
        let (item, after) = match d.get(infe.start).copied().unwrap_or(0) {
            2 => (be16(d, infe.start + 4).map(u32::from), infe.start + 8),
            3 => (be32(d, infe.start + 4), infe.start + 10),
            _ => continue,
        };
        if item == Some(id)
            && let Some(kind) = d.get(after..after + 4)
        {
            return Ok([kind[0], kind[1], kind[2], kind[3]]);
        }
    }
    Err(undecodable("does not describe the primary item"))
}

/// The properties `ipma` associates with item `id`, in association order.
fn properties<'a>(d: &'a [u8], meta: &[BoxRef<'a>], id: u32) -> Result<Vec<BoxRef<'a>>, ImagingError> {
    let iprp = find(meta, b"iprp").ok_or_else(|| undecodable("has no item properties"))?;
    let iprp = children(d, iprp.start, iprp.end);
    let ipco = find(&iprp, b"ipco").ok_or_else(|| undecodable("has no property container"))?;
    let all = children(d, ipco.start, ipco.end);
    let mut out = Vec::new();
    for ipma in iprp.iter().filter(|b| b.kind == b"ipma") {
        // Every read below stays inside this box.
        let d = &d[..ipma.end];
        let (Some(&version), Some(&flags)) = (d.get(ipma.start), d.get(ipma.start + 3)) else {
            return Err(truncated("HEIF"));
        };
        let count = be32(d, ipma.start + 4).ok_or_else(|| truncated("HEIF"))?;
        let mut pos = ipma.start + 8;
        for _ in 0..count {
            let item = if version < 1 {
                be16(d, pos).map(u32::from)
            } else {
                be32(d, pos)
            };
            pos += if version < 1 { 2 } else { 4 };
            let (Some(item), Some(&n)) = (item, d.get(pos)) else {
                return Err(truncated("HEIF"));
            };
            pos += 1;
            for _ in 0..n {
                let index = if flags & 1 != 0 {
                    be16(d, pos).map(|v| usize::from(v & 0x7fff))
                } else {
                    d.get(pos).map(|v| usize::from(v & 0x7f))
                }
                .ok_or_else(|| truncated("HEIF"))?;
                pos += if flags & 1 != 0 { 2 } else { 1 };
                if item == id && index > 0 {
                    out.extend(all.get(index - 1).copied());
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }

    fn full(kind: &[u8; 4], version: u8, flags: u8, body: &[u8]) -> Vec<u8> {
        let mut b = vec![version, 0, 0, flags];
        b.extend_from_slice(body);
        bx(kind, &b)
    }

    /// A minimal HEIF header: primary item 1 of `item_type`, sized w×h,
    /// optionally rotated and with an ICC profile.
    pub(crate) fn heif(brand: &[u8; 4], item_type: &[u8; 4], w: u32, h: u32, irot: Option<u8>) -> Vec<u8> {
        let mut ftyp = brand.to_vec();
        ftyp.extend_from_slice(&[0, 0, 0, 0]);
        ftyp.extend_from_slice(b"mif1");
        ftyp.extend_from_slice(brand);
        let mut infe_body = 1u16.to_be_bytes().to_vec();
        infe_body.extend_from_slice(&[0, 0]);
        infe_body.extend_from_slice(item_type);
        let mut iinf = 1u16.to_be_bytes().to_vec();
        iinf.extend(full(b"infe", 2, 0, &infe_body));
        let mut ispe = w.to_be_bytes().to_vec();
        ispe.extend_from_slice(&h.to_be_bytes());
        let mut ipco = full(b"ispe", 0, 0, &ispe);
        let mut colr = b"prof".to_vec();
        colr.extend_from_slice(b"ICCDATA");
        ipco.extend(bx(b"colr", &colr));
        let mut assoc = vec![0x81, 2];
        if let Some(r) = irot {
            ipco.extend(bx(b"irot", &[r]));
            assoc.push(3);
        }
        let mut ipma = 1u32.to_be_bytes().to_vec();
        ipma.extend_from_slice(&1u16.to_be_bytes());
        ipma.push(assoc.len() as u8);
        ipma.extend(assoc);
        let mut iprp = bx(b"ipco", &ipco);
        iprp.extend(full(b"ipma", 0, 0, &ipma));
        let mut meta = full(b"pitm", 0, 0, &1u16.to_be_bytes());
        meta.extend(full(b"iinf", 0, 0, &iinf));
        meta.extend(bx(b"iprp", &iprp));
        let mut out = bx(b"ftyp", &ftyp);
        out.extend(full(b"meta", 0, 0, &meta));
        out
    }

    #[test]
    fn test_probe_reads_primary_item_size_rotation_and_profile() {
        let d = heif(b"avif", b"av01", 4032, 3024, Some(1));
        let h = probe(&d).unwrap();
        assert_eq!(
            (h.format, h.width, h.height, h.quarter_turns),
            (ImageFormat::Avif, 4032, 3024, 1)
        );
        assert_eq!(&d[h.icc.unwrap()], b"ICCDATA");
    }

    #[test]
    fn test_probe_grid_takes_codec_from_brand_and_generic_brand_from_item() {
        let h = probe(&heif(b"heic", b"grid", 8064, 6048, None)).unwrap();
        assert_eq!((h.format, h.width, h.quarter_turns), (ImageFormat::Heic, 8064, 0));
        assert_eq!(
            probe(&heif(b"mif1", b"hvc1", 10, 10, None)).unwrap().format,
            ImageFormat::Heic
        );
        assert!(matches!(
            probe(&heif(b"mif1", b"grid", 10, 10, None)),
            Err(ImagingError::UnsupportedFormat(_))
        ));
        assert!(matches!(
            probe(&heif(b"heic", b"jpeg", 10, 10, None)),
            Err(ImagingError::UnsupportedFormat(_))
        ));
    }

    #[test]
    fn test_sniff_needs_a_heif_brand() {
        assert_eq!(
            sniff(&heif(b"avif", b"av01", 1, 1, None)),
            Some(Some(ImageFormat::Avif))
        );
        assert_eq!(sniff(&bx(b"ftyp", b"isom\0\0\0\0mp41")), None);
        assert_eq!(sniff(b"\0\0\0\x10ftypmif1"), Some(None));
        assert_eq!(sniff(b"\0\0\0\x10ftyp"), None);
    }

    #[test]
    fn test_every_truncation_is_an_error_never_a_panic() {
        let d = heif(b"avif", b"av01", 640, 480, Some(3));
        for n in 0..d.len() {
            assert!(probe(&d[..n]).is_err(), "{n} bytes");
        }
        // Sizes that lie: a box claiming more than its parent, or 64-bit huge.
        let mut lying = d.clone();
        lying[24..28].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(probe(&lying).is_err());
        let mut huge = d;
        huge[24..28].copy_from_slice(&1u32.to_be_bytes());
        assert!(probe(&huge).is_err());
    }
}
