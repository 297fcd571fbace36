//! The `[desktop]` section: how the desktop tools reach a session's X display and how large
//! and in which format their screenshots come back.

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::errors::invalid;

/// Largest `max_screenshot_side` accepted (a 4K long side).
pub const MAX_SIDE_LIMIT: u32 = 4096;
/// Smallest `max_screenshot_side` accepted.
pub const MIN_SIDE_LIMIT: u32 = 64;
/// Longest settle delay accepted, in milliseconds.
pub const MAX_SETTLE_MS: u64 = 10_000;

/// The image format of desktop screenshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ScreenshotFormat {
    /// Small (tens of kilobytes at 1280×720); the default.
    #[default]
    Jpeg,
    /// Lossless, larger.
    Png,
}

impl ScreenshotFormat {
    /// The ImageMagick output format name.
    pub fn magick_name(self) -> &'static str {
        match self {
            ScreenshotFormat::Jpeg => "jpeg",
            ScreenshotFormat::Png => "png",
        }
    }

    /// The MIME type of MCP image content.
    pub fn mime_type(self) -> &'static str {
        match self {
            ScreenshotFormat::Jpeg => "image/jpeg",
            ScreenshotFormat::Png => "image/png",
        }
    }
}

/// Desktop tools (`desktop_screenshot`, `desktop_action`, `desktop_windows`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DesktopConfig {
    /// X display the tools act on inside the session (`DISPLAY`): Kasm images use `:1`.
    pub display: String,
    /// Screenshots are scaled down so that their longer side is at most this many pixels;
    /// coordinates in `desktop_action` are given in that scaled space.
    pub max_screenshot_side: u32,
    /// `jpeg` or `png`.
    pub format: ScreenshotFormat,
    /// Milliseconds to wait after an action before the screenshot it asks for.
    pub settle_ms: u64,
}

impl Default for DesktopConfig {
    fn default() -> Self {
        DesktopConfig {
            display: ":1".into(),
            max_screenshot_side: 1280,
            format: ScreenshotFormat::Jpeg,
            settle_ms: 500,
        }
    }
}

/// Whether `display` is an X display name: `[host]:N[.S]` with a plain host name.
pub fn is_display_name(display: &str) -> bool {
    let Some((host, rest)) = display.rsplit_once(':') else {
        return false;
    };
    let (number, screen) = rest.split_once('.').unwrap_or((rest, "0"));
    let digits = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
    };
    host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && digits(number, 5)
        && digits(screen, 3)
}

impl DesktopConfig {
    /// Check every value; messages name the key and the fix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !is_display_name(&self.display) {
            return Err(invalid(
                "desktop.display",
                &self.display,
                "use an X display name such as :1 (Kasm's default) or :0.0",
            ));
        }
        if !(MIN_SIDE_LIMIT..=MAX_SIDE_LIMIT).contains(&self.max_screenshot_side) {
            return Err(invalid(
                "desktop.max_screenshot_side",
                self.max_screenshot_side.to_string(),
                format!("use between {MIN_SIDE_LIMIT} and {MAX_SIDE_LIMIT} pixels (default 1280)"),
            ));
        }
        if self.settle_ms > MAX_SETTLE_MS {
            return Err(invalid(
                "desktop.settle_ms",
                self.settle_ms.to_string(),
                format!("use at most {MAX_SETTLE_MS} milliseconds (default 500)"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names() {
        for good in [":1", ":0.0", "localhost:10", "host-a.example:2.1"] {
            assert!(is_display_name(good), "{good}");
        }
        for bad in [
            "", "1", ":", ":a", ":1;rm", "$(x):1", ":1.", "h st:1", ":123456",
        ] {
            assert!(!is_display_name(bad), "{bad}");
        }
    }

    #[test]
    fn defaults_are_valid_and_bad_values_name_the_key() {
        assert!(DesktopConfig::default().validate().is_ok());
        let bad = DesktopConfig {
            max_screenshot_side: 10,
            ..DesktopConfig::default()
        };
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("desktop.max_screenshot_side"), "{err}");
        let bad = DesktopConfig {
            display: "x;y".into(),
            ..DesktopConfig::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("desktop.display")
        );
    }
}
