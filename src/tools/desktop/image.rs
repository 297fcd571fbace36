//! Reading an image's pixel size from its PNG or JPEG header, to check a capture is the
//! image it claims to be before it is handed to the model.

/// Width and height in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageSize {
    pub width: u32,
    pub height: u32,
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// The size of a PNG (from `IHDR`) or JPEG (from the first start-of-frame marker).
pub fn image_size(bytes: &[u8]) -> Option<ImageSize> {
    if bytes.starts_with(PNG_SIGNATURE) {
        return png_size(bytes);
    }
    if bytes.starts_with(&[0xFF, 0xD8]) {
        return jpeg_size(bytes);
    }
    None
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    let b = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

fn png_size(bytes: &[u8]) -> Option<ImageSize> {
    (bytes.get(12..16)? == b"IHDR").then_some(())?;
    let size = ImageSize {
        width: be32(bytes, 16)?,
        height: be32(bytes, 20)?,
    };
    (size.width > 0 && size.height > 0).then_some(size)
}

fn jpeg_size(bytes: &[u8]) -> Option<ImageSize> {
    let mut at = 2usize;
    loop {
        if *bytes.get(at)? != 0xFF {
            return None;
        }
        let marker = *bytes.get(at + 1)?;
        match marker {
            // Fill bytes, and markers without a length.
            0xFF => {
                at += 1;
                continue;
            }
            0x01 | 0xD0..=0xD7 => {
                at += 2;
                continue;
            }
            _ => {}
        }
        let length = usize::from(be16(bytes, at + 2)?);
        let is_frame = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_frame {
            let size = ImageSize {
                height: u32::from(be16(bytes, at + 5)?),
                width: u32::from(be16(bytes, at + 7)?),
            };
            return (size.width > 0 && size.height > 0).then_some(size);
        }
        at = at.checked_add(2)?.checked_add(length)?;
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// The first bytes of a PNG of the given size (enough for [`image_size`]).
    pub fn png_header(width: u32, height: u32) -> Vec<u8> {
        let mut v = PNG_SIGNATURE.to_vec();
        v.extend_from_slice(&13u32.to_be_bytes());
        v.extend_from_slice(b"IHDR");
        v.extend_from_slice(&width.to_be_bytes());
        v.extend_from_slice(&height.to_be_bytes());
        v.extend_from_slice(&[8, 2, 0, 0, 0]);
        v
    }

    #[test]
    fn png_and_jpeg_sizes() {
        assert_eq!(
            image_size(&png_header(1280, 720)),
            Some(ImageSize {
                width: 1280,
                height: 720
            })
        );
        // SOI, an APP0 segment, then SOF0 with height 720, width 1280.
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x00, 0x00];
        jpeg.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 0x08, 0x02, 0xD0, 0x05, 0x00, 0x03]);
        assert_eq!(
            image_size(&jpeg),
            Some(ImageSize {
                width: 1280,
                height: 720
            })
        );
        for junk in [&b""[..], b"GIF89a", &[0xFF, 0xD8, 0xFF], &png_header(0, 5)] {
            assert_eq!(image_size(junk), None);
        }
    }
}
