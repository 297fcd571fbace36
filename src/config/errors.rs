//! What a configuration problem looks like (key, value, fix) and the value checks more than one
//! section shares.

/// A configuration problem, phrased for the operator.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("could not load configuration: {0}")]
    Load(String),
    #[error("invalid configuration: {key} = {value:?}: {fix}")]
    Invalid {
        key: &'static str,
        value: String,
        fix: String,
    },
}

pub(super) fn invalid(
    key: &'static str,
    value: impl Into<String>,
    fix: impl Into<String>,
) -> ConfigError {
    ConfigError::Invalid {
        key,
        value: value.into(),
        fix: fix.into(),
    }
}

pub(super) fn check_http_url(key: &'static str, value: &str) -> Result<(), ConfigError> {
    match url::Url::parse(value) {
        Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => Ok(()),
        _ => Err(invalid(
            key,
            value,
            "use an absolute http:// or https:// URL, e.g. https://kasm.example.com",
        )),
    }
}
