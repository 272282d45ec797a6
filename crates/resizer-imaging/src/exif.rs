//! Reads the EXIF orientation tag (0x0112) from a TIFF-structured EXIF block.
//!
//! Only IFD0 is walked, with every offset bounds-checked, so hostile EXIF can
//! cost at most one pass over its bytes.

/// Returns the orientation (1–8) if the block carries a valid one.
pub fn orientation(tiff: &[u8]) -> Option<u8> {
    let big_endian = match tiff.get(0..4)? {
        [b'I', b'I', 42, 0] => false,
        [b'M', b'M', 0, 42] => true,
        _ => return None,
    };
    let u16_at = |off: usize| -> Option<u16> {
        let b = tiff.get(off..off + 2)?;
        Some(if big_endian {
            u16::from_be_bytes([b[0], b[1]])
        } else {
            u16::from_le_bytes([b[0], b[1]])
        })
    };
    let u32_at = |off: usize| -> Option<u32> {
        let b = tiff.get(off..off + 4)?;
        Some(if big_endian {
            u32::from_be_bytes([b[0], b[1], b[2], b[3]])
        } else {
            u32::from_le_bytes([b[0], b[1], b[2], b[3]])
        })
    };
    let ifd = u32_at(4)? as usize;
    let count = u16_at(ifd)? as usize;
    for i in 0..count {
        let entry = ifd.checked_add(2 + i * 12)?;
        if u16_at(entry)? == 0x0112 {
            // Type SHORT (3), count 1: the value sits in the first two bytes of the field.
            if u16_at(entry + 2)? != 3 {
                return None;
            }
            let value = u16_at(entry + 8)?;
            return (1..=8).contains(&value).then_some(value as u8);
        }
    }
    None
}

/// Builds a minimal little-endian TIFF block with one orientation tag; for tests and fixtures.
pub fn tiff_with_orientation(orientation: u8) -> Vec<u8> {
    let mut t = vec![b'I', b'I', 42, 0, 8, 0, 0, 0];
    t.extend_from_slice(&1u16.to_le_bytes());
    t.extend_from_slice(&0x0112u16.to_le_bytes());
    t.extend_from_slice(&3u16.to_le_bytes());
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(&u16::from(orientation).to_le_bytes());
    t.extend_from_slice(&[0, 0]);
    t.extend_from_slice(&0u32.to_le_bytes());
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_orientation_round_trips_little_endian() {
        for o in 1..=8 {
            assert_eq!(orientation(&tiff_with_orientation(o)), Some(o));
        }
    }

    #[test]
    fn test_orientation_big_endian() {
        let mut t = vec![b'M', b'M', 0, 42, 0, 0, 0, 8, 0, 1];
        t.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0]);
        assert_eq!(orientation(&t), Some(6));
    }

    #[test]
    fn test_orientation_hostile_input_is_none() {
        assert_eq!(orientation(&[]), None);
        assert_eq!(orientation(b"II*\0\xff\xff\xff\xff"), None);
        let mut t = tiff_with_orientation(6);
        t[8] = 0xff; // claims 65535 entries that are not there
        t[9] = 0xff;
        t[10] = 0; // and the one present is not the orientation tag
        assert_eq!(orientation(&t), None);
        assert_eq!(orientation(&tiff_with_orientation(9)), None);
    }
}
