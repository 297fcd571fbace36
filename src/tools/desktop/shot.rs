//! Turning a capture into MCP content: the image block plus a caption with the real and
//! scaled sizes (the space `desktop_action` coordinates live in).

use base64::Engine;

use crate::config::ScreenshotFormat;
use crate::kasm::KasmId;
use crate::mcp::Content;

use super::run::Shot;

/// The image block and its caption.
pub fn content(kasm_id: &KasmId, shot: &Shot, format: ScreenshotFormat) -> [Content; 2] {
    let Shot { screen, bytes } = shot;
    let scaled = if screen.real == screen.scaled {
        "not scaled".to_string()
    } else {
        format!("scaled to {}×{}", screen.scaled.width, screen.scaled.height)
    };
    [
        Content::Image {
            data: base64::engine::general_purpose::STANDARD.encode(bytes),
            mime_type: format.mime_type().into(),
        },
        Content::Text {
            text: format!(
                "Fresh screenshot of session {kasm_id}: display {}×{}, {scaled} ({}, {} bytes). desktop_action coordinates are pixels of this {}×{} image.",
                screen.real.width,
                screen.real.height,
                format.magick_name().to_uppercase(),
                bytes.len(),
                screen.scaled.width,
                screen.scaled.height,
            ),
        },
    ]
}
