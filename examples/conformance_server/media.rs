//! Tiny media payloads the fixtures return: a 1×1 PNG and a short silent WAV.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use kasm_mcp::mcp::Content;

/// A 1×1 PNG.
pub const PNG_BASE64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";

/// A tiny valid WAV file (8 kHz, 8-bit mono, 8 samples of silence).
pub fn wav_base64() -> String {
    let samples = [128u8; 8];
    let mut wav = Vec::new();
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + samples.len() as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&8000u32.to_le_bytes());
    wav.extend_from_slice(&8000u32.to_le_bytes()); // byte rate
    wav.extend_from_slice(&1u16.to_le_bytes()); // block align
    wav.extend_from_slice(&8u16.to_le_bytes()); // bits per sample
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(samples.len() as u32).to_le_bytes());
    wav.extend_from_slice(&samples);
    BASE64.encode(wav)
}

pub fn png() -> Content {
    Content::Image {
        data: PNG_BASE64.into(),
        mime_type: "image/png".into(),
    }
}
