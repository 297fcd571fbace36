//! Which workspace images a role may launch (and so see in `get_available_workspaces`): the
//! role's allow-list from `[images]`, matched by friendly name (case-insensitive) or image id
//! (dashes and case ignored). No list: every image.

/// A refused image, naming the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the image {image} is not allowed for the {role} role: images.{role} lists the images this role may launch ({allowed}). Pick one of those (get_available_workspaces shows them), or ask an administrator to add it to images.{role}"
)]
pub struct ImageNotAllowed {
    pub image: String,
    pub role: String,
    pub allowed: String,
}

fn id_form(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '-')
        .collect::<String>()
        .to_ascii_lowercase()
}

/// Whether an image (`image_id`, `friendly_name`) is on `allowed` (`None`: no list).
pub fn may_launch(allowed: Option<&[String]>, image_id: &str, friendly_name: Option<&str>) -> bool {
    let Some(allowed) = allowed else {
        return true;
    };
    allowed.iter().any(|entry| {
        id_form(entry) == id_form(image_id)
            || friendly_name.is_some_and(|name| name.eq_ignore_ascii_case(entry.trim()))
    })
}

/// [`may_launch`], as a refusal for `role` that names the rule.
pub fn check_launch(
    allowed: Option<&[String]>,
    role: &str,
    image_id: &str,
    friendly_name: Option<&str>,
) -> Result<(), ImageNotAllowed> {
    if may_launch(allowed, image_id, friendly_name) {
        return Ok(());
    }
    Err(ImageNotAllowed {
        image: friendly_name.unwrap_or(image_id).to_string(),
        role: role.to_string(),
        allowed: allowed
            .filter(|a| !a.is_empty())
            .map(|a| a.join(", "))
            .unwrap_or_else(|| "none".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists() {
        let list = vec![
            "Terminal".to_string(),
            "22222222-2222-2222-2222-222222222222".to_string(),
        ];
        let empty: Vec<String> = Vec::new();
        // (allowed, image id, friendly name, may launch)
        type Row<'a> = (Option<&'a [String]>, &'a str, Option<&'a str>, bool);
        let table: [Row; 8] = [
            (None, "aa", Some("Anything"), true),
            (Some(&list), "11", Some("Terminal"), true),
            (Some(&list), "11", Some("terminal"), true),
            (Some(&list), "11", Some("Terminal Pro"), false),
            (
                Some(&list),
                "22222222222222222222222222222222",
                Some("Chrome"),
                true,
            ),
            (
                Some(&list),
                "33333333333333333333333333333333",
                Some("Chrome"),
                false,
            ),
            (Some(&list), "33", None, false),
            (Some(&empty), "11", Some("Terminal"), false),
        ];
        for (allowed, id, name, may) in table {
            assert_eq!(
                may_launch(allowed, id, name),
                may,
                "{allowed:?} {id} {name:?}"
            );
        }
        let err = check_launch(Some(&list), "operator", "33", Some("Chrome")).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("images.operator") && text.contains("Chrome"),
            "{text}"
        );
        assert!(
            check_launch(Some(&empty), "viewer", "x", None)
                .unwrap_err()
                .to_string()
                .contains("(none)")
        );
    }
}
