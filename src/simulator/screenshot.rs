//! Generated session screenshots: a real JPEG of a stylised desktop (a wallpaper gradient, a
//! top bar and a terminal window), tinted per session so different sessions look different.
//! Like Kasm, the desktop's 16:9 aspect ratio is kept, so the size can differ from the request.

use jpeg_encoder::{ColorType, Encoder};

/// Largest side the simulator renders.
pub const MAX_SIDE: u32 = 1920;
const DESKTOP_W: u32 = 1280;
const DESKTOP_H: u32 = 720;

/// Fit the 16:9 desktop into `width`×`height` (each clamped to 16..=MAX_SIDE).
pub fn fitted_size(width: u32, height: u32) -> (u16, u16) {
    let w = width.clamp(16, MAX_SIDE);
    let h = height.clamp(16, MAX_SIDE);
    let (fw, fh) = if u64::from(w) * u64::from(DESKTOP_H) <= u64::from(h) * u64::from(DESKTOP_W) {
        (w, (w * DESKTOP_H / DESKTOP_W).max(9))
    } else {
        ((h * DESKTOP_W / DESKTOP_H).max(16), h)
    };
    (
        u16::try_from(fw).unwrap_or(16),
        u16::try_from(fh).unwrap_or(9),
    )
}

/// Render the screenshot of a session as JPEG bytes.
pub fn render(kasm_id: &str, width: u32, height: u32) -> Result<Vec<u8>, String> {
    let (w, h) = fitted_size(width, height);
    let tint = kasm_id.bytes().fold(0u32, |acc, b| {
        acc.wrapping_mul(31).wrapping_add(u32::from(b))
    });
    let (tr, tg) = ((tint & 0x3f) as u8, ((tint >> 8) & 0x3f) as u8);
    let (wf, hf) = (f32::from(w), f32::from(h));
    let mut pixels = Vec::with_capacity(usize::from(w) * usize::from(h) * 3);
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (f32::from(x) / wf, f32::from(y) / hf);
            let rgb = if fy < 0.04 {
                [30, 30, 36]
            } else if (0.15..0.80).contains(&fx) && (0.15..0.85).contains(&fy) {
                if fy < 0.20 {
                    [60, 60, 70]
                } else if ((fy * 40.0) as u32).is_multiple_of(3) && fx < 0.5 {
                    [110, 210, 120]
                } else {
                    [16, 16, 20]
                }
            } else {
                [
                    (20.0 + 60.0 * fx) as u8 + tr,
                    (40.0 + 50.0 * fy) as u8 + tg,
                    (120.0 + 80.0 * (1.0 - fy)) as u8,
                ]
            };
            pixels.extend_from_slice(&rgb);
        }
    }
    let mut out = Vec::new();
    Encoder::new(&mut out, 80)
        .encode(&pixels, w, h, ColorType::Rgb)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_aspect_ratio() {
        assert_eq!(fitted_size(300, 300), (300, 168));
        assert_eq!(fitted_size(1280, 1280), (1280, 720));
        assert_eq!(fitted_size(4000, 90), (160, 90));
        assert_eq!(fitted_size(0, 0), (16, 9));
    }

    #[test]
    fn is_a_jpeg() {
        let a = render("a", 320, 180).unwrap();
        let b = render("b", 320, 180).unwrap();
        assert_eq!(&a[..3], &[0xFF, 0xD8, 0xFF]);
        assert_eq!(&a[a.len() - 2..], &[0xFF, 0xD9]);
        assert_ne!(a, b);
    }
}
