//! The simulator's workspace catalogue: three realistic images with stable ids (R14 shape).

use serde_json::{Value, json};

/// One workspace image.
#[derive(Debug, Clone, Copy)]
pub struct ImageDef {
    pub image_id: &'static str,
    pub name: &'static str,
    pub friendly_name: &'static str,
    pub description: &'static str,
    pub image_src: &'static str,
    pub category: &'static str,
    pub cores: f64,
    pub memory: i64,
}

/// Terminal: the default image of the seeded users' group.
pub const TERMINAL_IMAGE_ID: &str = "c7af5cfaf7a649b69afd948f11199bd1";

pub const IMAGES: &[ImageDef] = &[
    ImageDef {
        image_id: TERMINAL_IMAGE_ID,
        name: "kasmweb/terminal:1.15.0",
        friendly_name: "Terminal",
        description: "A terminal with common command-line tools.",
        image_src: "img/thumbnails/terminal.png",
        category: "Development",
        cores: 2.0,
        memory: 2_768_000_000,
    },
    ImageDef {
        image_id: "2d1e0c7f9b8a4f3e8d6c5b4a39281706",
        name: "kasmweb/chrome:1.15.0",
        friendly_name: "Chrome",
        description: "Google Chrome web browser.",
        image_src: "img/thumbnails/chrome.png",
        category: "Productivity",
        cores: 2.0,
        memory: 2_768_000_000,
    },
    ImageDef {
        image_id: "5a4b3c2d1e0f4a9b8c7d6e5f40312233",
        name: "kasmweb/ubuntu-jammy-desktop:1.15.0",
        friendly_name: "Ubuntu Jammy",
        description: "Ubuntu 22.04 desktop with productivity tools.",
        image_src: "img/thumbnails/ubuntu.png",
        category: "Desktop",
        cores: 4.0,
        memory: 4_096_000_000,
    },
];

/// Look an image up by its (normalised) id.
pub fn find(image_id: &str) -> Option<&'static ImageDef> {
    IMAGES.iter().find(|i| i.image_id == image_id)
}

impl ImageDef {
    /// The full record returned by `get_images`.
    pub fn record(&self) -> Value {
        json!({
            "image_id": self.image_id, "name": self.name, "friendly_name": self.friendly_name,
            "description": self.description, "enabled": true, "available": true,
            "image_src": self.image_src, "cores": self.cores, "memory": self.memory,
            "gpu_count": 0, "categories": [self.category], "default_category": self.category,
            "image_type": "Container", "run_config": {}, "exec_config": {},
            "volume_mappings": {}, "restrict_to_network": false, "restrict_to_zone": false,
            "persistent_profile_path": null, "session_time_limit": null,
            "server": {}, "server_pool": {},
        })
    }

    /// The image summary nested in a session record.
    pub fn summary(&self) -> Value {
        json!({
            "image_id": self.image_id, "name": self.name, "friendly_name": self.friendly_name,
            "image_src": self.image_src, "session_time_limit": null,
            "categories": [self.category], "default_category": self.category,
            "image_type": "Container",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_uuids() {
        for image in IMAGES {
            assert!(crate::kasm::normalize_id("image_id", image.image_id).is_ok());
            assert_eq!(find(image.image_id).map(|i| i.name), Some(image.name));
        }
        assert!(find(TERMINAL_IMAGE_ID).is_some());
    }
}
