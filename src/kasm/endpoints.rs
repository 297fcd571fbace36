//! What the transport prepares once per Kasm endpoint instead of on every call: the endpoint's
//! URL, `{base}/api/public/<endpoint>` (reqwest takes the URL by value, so a call clones the
//! prepared one instead of cloning the base and rebuilding its path), and its metric handles
//! (request count and latency, kept instead of looked up by label on every call).

use std::collections::HashMap;

use url::Url;

use super::permissions::ENDPOINTS;
use crate::telemetry::KasmSeries;

/// One endpoint's URL and series.
#[derive(Debug)]
pub struct Endpoint {
    pub url: Url,
    pub series: KasmSeries,
}

/// Every endpoint of [`ENDPOINTS`], prepared for one base URL.
#[derive(Debug)]
pub struct Endpoints {
    base: Url,
    known: HashMap<&'static str, Endpoint>,
}

impl Endpoints {
    /// The endpoints under `base` (a parsed Kasm base URL, without `/api/public`).
    pub fn new(base: Url) -> Self {
        let known = ENDPOINTS
            .iter()
            .map(|spec| {
                let endpoint = Endpoint {
                    url: url_of(&base, spec.name),
                    series: KasmSeries::new(spec.name),
                };
                (spec.name, endpoint)
            })
            .collect();
        Endpoints { base, known }
    }

    /// The prepared endpoint, if `name` is one of [`ENDPOINTS`].
    pub fn get(&self, name: &str) -> Option<&Endpoint> {
        self.known.get(name)
    }

    /// `{base}/api/public/<name>`, built now (for a name that is not prepared).
    pub fn url(&self, name: &str) -> Url {
        url_of(&self.base, name)
    }
}

/// `{base}/api/public/<name>`, from the parsed base (no parsing again).
fn url_of(base: &Url, name: &str) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(["api", "public", name]);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepared_urls_are_the_ones_built_per_call() {
        for base in [
            "https://kasm.example.com",
            "http://127.0.0.1:8443/kasm",
            "https://kasm.example.com:9443/a/b",
        ] {
            let endpoints = Endpoints::new(Url::parse(base).unwrap());
            for spec in ENDPOINTS {
                let prepared = &endpoints.get(spec.name).unwrap().url;
                assert_eq!(prepared, &endpoints.url(spec.name), "{base} {}", spec.name);
                assert_eq!(
                    prepared.as_str(),
                    format!("{base}/api/public/{}", spec.name),
                    "{base}"
                );
            }
            assert!(endpoints.get("no_such_endpoint").is_none());
            assert_eq!(
                endpoints.url("no_such_endpoint").as_str(),
                format!("{base}/api/public/no_such_endpoint")
            );
        }
    }
}
