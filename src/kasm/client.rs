//! [`KasmClient`]: the reqwest implementation of [`super::KasmApi`] — one method per classic
//! `/api/public/*` endpoint, ids normalised before sending, answers decoded into the typed
//! shapes of `types.rs`. Transport, retries and error mapping live in `http.rs`/`response.rs`.

use async_trait::async_trait;
use bytes::Bytes;
use secrecy::SecretString;
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::http::{ClientOptions, Transport};
use super::response::{self, RawResponse};
use super::status_answer;
use super::{
    ExecConfig, Image, JoinKasmResponse, KasmApi, KasmError, KasmResult, KeepaliveResponse,
    NewUser, Recordings, RequestKasm, RequestKasmResponse, Session, SessionStatus, User, UserRef,
    UserUpdate, normalize_id,
};
use crate::config::KasmConfig;

/// A typed, pooled client for one Kasm server and API key.
#[derive(Debug)]
pub struct KasmClient {
    transport: Transport,
}

/// Fields of a request body (credentials are added by the transport).
type Fields = Map<String, Value>;

fn fields(value: Value) -> Fields {
    match value {
        Value::Object(map) => map,
        _ => Fields::new(),
    }
}

fn to_fields(endpoint: &'static str, value: &impl Serialize) -> KasmResult<Value> {
    serde_json::to_value(value).map_err(|e| {
        KasmError::InvalidArgument(format!("cannot encode the request to {endpoint}: {e}"))
    })
}

fn kasm_id(raw: &str) -> KasmResult<String> {
    normalize_id("kasm_id", raw)
}

fn user_id(raw: &str) -> KasmResult<String> {
    normalize_id("user_id", raw)
}

fn opt_user_id(raw: Option<&str>) -> KasmResult<Option<String>> {
    raw.map(user_id).transpose()
}

/// `{kasm_id, user_id?}` — the body of most session calls.
fn session_fields(kasm: &str, user: Option<&str>) -> KasmResult<Fields> {
    let mut map = Fields::new();
    map.insert("kasm_id".into(), Value::String(kasm_id(kasm)?));
    if let Some(user) = opt_user_id(user)? {
        map.insert("user_id".into(), Value::String(user));
    }
    Ok(map)
}

/// The body of `get_kasm_status`, written as it is (the most frequent call: no map of its
/// fields is built). Keys in the order a map of them would have (sorted).
#[derive(Serialize)]
struct StatusRequest<'a> {
    kasm_id: &'a str,
    skip_agent_check: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
}

fn target_user(user: &str) -> KasmResult<Fields> {
    Ok(fields(
        json!({ "target_user": { "user_id": user_id(user)? } }),
    ))
}

impl KasmClient {
    /// A client for the Kasm server at `base_url` (e.g. `https://kasm.example.com`).
    pub fn new(
        base_url: &str,
        api_key: SecretString,
        api_secret: SecretString,
        options: ClientOptions,
    ) -> KasmResult<Self> {
        Ok(KasmClient {
            transport: Transport::new(base_url, api_key, api_secret, options)?,
        })
    }

    /// A client from the `[kasm]` configuration; names the missing settings if any.
    pub fn from_config(config: &KasmConfig) -> KasmResult<Self> {
        let mut missing = Vec::new();
        if config.api_url.is_none() {
            missing.push("KASM_API_URL (kasm.api_url)");
        }
        if config.api_key.is_none() {
            missing.push("KASM_API_KEY (kasm.api_key)");
        }
        if config.api_secret.is_none() {
            missing.push("KASM_API_SECRET (kasm.api_secret)");
        }
        match (&config.api_url, &config.api_key, &config.api_secret) {
            (Some(url), Some(key), Some(secret)) => Self::new(
                url,
                key.clone(),
                secret.clone(),
                ClientOptions::from_config(config),
            ),
            _ => Err(KasmError::InvalidArgument(format!(
                "the Kasm connection is not configured: set {}",
                missing.join(", ")
            ))),
        }
    }

    /// The Kasm base URL in use (no `/api/public`).
    pub fn base_url(&self) -> &str {
        self.transport.base_url()
    }

    /// A JSON endpoint whose checked body is returned as is.
    async fn json(&self, endpoint: &'static str, body: Fields) -> KasmResult<Value> {
        self.transport
            .call(endpoint, body, |raw: RawResponse| {
                response::json_body(endpoint, &raw)
            })
            .await
    }

    /// A JSON endpoint whose success answer is `{}`.
    async fn unit(&self, endpoint: &'static str, body: Fields) -> KasmResult<()> {
        let value = self.json(endpoint, body).await?;
        response::expect_object(endpoint, &value)
    }

    async fn user_record(&self, endpoint: &'static str, body: Fields) -> KasmResult<User> {
        let value = self.json(endpoint, body).await?;
        response::required_field(endpoint, &value, "user")
    }

    async fn session_list(&self, endpoint: &'static str, body: Fields) -> KasmResult<Vec<Session>> {
        let value = self.json(endpoint, body).await?;
        response::list_field(endpoint, &value, "kasms")
    }
}

#[async_trait]
impl KasmApi for KasmClient {
    async fn request_kasm(&self, req: &RequestKasm) -> KasmResult<RequestKasmResponse> {
        const EP: &str = "request_kasm";
        let mut req = req.clone();
        req.user_id = opt_user_id(req.user_id.as_deref())?;
        req.image_id = req
            .image_id
            .as_deref()
            .map(|id| normalize_id("image_id", id))
            .transpose()?;
        let value = self.json(EP, fields(to_fields(EP, &req)?)).await?;
        response::decode(EP, value)
    }

    async fn get_kasm_status(&self, kasm: &str, user: Option<&str>) -> KasmResult<SessionStatus> {
        const EP: &str = "get_kasm_status";
        let id = kasm_id(kasm)?;
        let user = opt_user_id(user)?;
        let body = StatusRequest {
            kasm_id: &id,
            skip_agent_check: false,
            user_id: user.as_deref(),
        };
        self.transport
            .call_with(EP, &body, |raw| {
                status_answer::session_status(EP, &id, &raw)
            })
            .await
    }

    async fn get_kasms(&self) -> KasmResult<Vec<Session>> {
        self.session_list("get_kasms", Fields::new()).await
    }

    async fn get_user_kasms(&self, user: &str) -> KasmResult<Vec<Session>> {
        let body = fields(json!({ "user_id": user_id(user)? }));
        self.session_list("get_user_kasms", body).await
    }

    async fn destroy_kasm(&self, kasm: &str, user: Option<&str>) -> KasmResult<()> {
        self.unit("destroy_kasm", session_fields(kasm, user)?).await
    }

    async fn stop_kasm(&self, kasm: &str, user: Option<&str>) -> KasmResult<()> {
        self.unit("stop_kasm", session_fields(kasm, user)?).await
    }

    async fn pause_kasm(&self, kasm: &str, user: Option<&str>) -> KasmResult<()> {
        self.unit("pause_kasm", session_fields(kasm, user)?).await
    }

    async fn resume_kasm(&self, kasm: &str, user: Option<&str>) -> KasmResult<()> {
        self.unit("resume_kasm", session_fields(kasm, user)?).await
    }

    async fn exec_command_kasm(
        &self,
        kasm: &str,
        user: Option<&str>,
        exec: &ExecConfig,
    ) -> KasmResult<()> {
        const EP: &str = "exec_command_kasm";
        if exec.cmd.trim().is_empty() {
            return Err(KasmError::InvalidArgument(
                "exec_config.cmd must not be empty".into(),
            ));
        }
        let mut body = session_fields(kasm, user)?;
        body.insert("exec_config".into(), to_fields(EP, exec)?);
        self.unit(EP, body).await
    }

    async fn keepalive(&self, kasm: &str) -> KasmResult<KeepaliveResponse> {
        const EP: &str = "keepalive";
        let value = self.json(EP, session_fields(kasm, None)?).await?;
        response::decode(EP, value)
    }

    async fn get_kasm_screenshot(
        &self,
        kasm: &str,
        user: Option<&str>,
        width: u32,
        height: u32,
    ) -> KasmResult<Bytes> {
        const EP: &str = "get_kasm_screenshot";
        let mut body = session_fields(kasm, user)?;
        body.insert("width".into(), json!(width));
        body.insert("height".into(), json!(height));
        self.transport
            .call(EP, body, |raw| response::screenshot(EP, raw))
            .await
    }

    async fn get_kasm_frame_stats(
        &self,
        kasm: &str,
        user: Option<&str>,
        client: &str,
    ) -> KasmResult<Value> {
        let mut body = session_fields(kasm, user)?;
        body.insert("client".into(), json!(client));
        self.json("get_kasm_frame_stats", body).await
    }

    async fn get_kasm_bottleneck_stats(&self, kasm: &str, user: Option<&str>) -> KasmResult<Value> {
        self.json("get_kasm_bottleneck_stats", session_fields(kasm, user)?)
            .await
    }

    async fn join_kasm(&self, share_id: &str, user: Option<&str>) -> KasmResult<JoinKasmResponse> {
        const EP: &str = "join_kasm";
        let share = share_id.trim();
        let plausible = !share.is_empty()
            && share.len() <= 64
            && share
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !plausible {
            return Err(KasmError::InvalidArgument(format!(
                "share_id must be the short id Kasm printed when sharing was enabled, got {share_id:?}"
            )));
        }
        let mut body = fields(json!({ "share_id": share }));
        if let Some(user) = opt_user_id(user)? {
            body.insert("user_id".into(), Value::String(user));
        }
        let value = self.json(EP, body).await?;
        response::decode(EP, value)
    }

    async fn get_images(&self) -> KasmResult<Vec<Image>> {
        const EP: &str = "get_images";
        let value = self.json(EP, Fields::new()).await?;
        response::list_field(EP, &value, "images")
    }

    async fn get_users(&self) -> KasmResult<Vec<User>> {
        const EP: &str = "get_users";
        let value = self.json(EP, Fields::new()).await?;
        response::list_field(EP, &value, "users")
    }

    async fn get_user(&self, who: &UserRef) -> KasmResult<User> {
        let body = match who {
            UserRef::Id(id) => target_user(id)?,
            UserRef::Username(name) if name.trim().is_empty() => {
                return Err(KasmError::InvalidArgument(
                    "username must not be empty".into(),
                ));
            }
            UserRef::Username(name) => fields(json!({ "target_user": { "username": name } })),
        };
        self.user_record("get_user", body).await
    }

    async fn create_user(&self, user: &NewUser) -> KasmResult<User> {
        const EP: &str = "create_user";
        if user.username.trim().is_empty() {
            return Err(KasmError::InvalidArgument(
                "username must not be empty".into(),
            ));
        }
        let body = fields(json!({ "target_user": to_fields(EP, user)? }));
        self.user_record(EP, body).await
    }

    async fn update_user(&self, update: &UserUpdate) -> KasmResult<User> {
        const EP: &str = "update_user";
        let mut update = update.clone();
        update.user_id = user_id(&update.user_id)?;
        let body = fields(json!({ "target_user": to_fields(EP, &update)? }));
        self.user_record(EP, body).await
    }

    async fn delete_user(&self, user: &str, force: bool) -> KasmResult<()> {
        let mut body = target_user(user)?;
        body.insert("force".into(), Value::Bool(force));
        self.unit("delete_user", body).await
    }

    async fn logout_user(&self, user: &str) -> KasmResult<()> {
        self.unit("logout_user", target_user(user)?).await
    }

    async fn get_login(&self, user: &str) -> KasmResult<String> {
        const EP: &str = "get_login";
        let value = self.json(EP, target_user(user)?).await?;
        response::required_field(EP, &value, "url")
    }

    async fn get_attributes(&self, user: &str) -> KasmResult<Map<String, Value>> {
        const EP: &str = "get_attributes";
        let value = self.json(EP, target_user(user)?).await?;
        response::required_field(EP, &value, "user_attributes")
    }

    async fn update_user_attributes(
        &self,
        user: &str,
        attributes: &Map<String, Value>,
    ) -> KasmResult<()> {
        let mut target = attributes.clone();
        target.insert("user_id".into(), Value::String(user_id(user)?));
        let body = fields(json!({ "target_user_attributes": target }));
        self.unit("update_user_attributes", body).await
    }

    async fn add_user_group(&self, user: &str, group_id: &str) -> KasmResult<()> {
        self.unit("add_user_group", group_fields(user, group_id)?)
            .await
    }

    async fn remove_user_group(&self, user: &str, group_id: &str) -> KasmResult<()> {
        self.unit("remove_user_group", group_fields(user, group_id)?)
            .await
    }

    async fn get_session_recordings(
        &self,
        kasm: &str,
        preauth_download_link: bool,
    ) -> KasmResult<Recordings> {
        const EP: &str = "get_session_recordings";
        let body = fields(json!({
            "target_kasm_id": kasm_id(kasm)?,
            "preauth_download_link": preauth_download_link,
        }));
        let value = self.json(EP, body).await?;
        response::decode(EP, value)
    }
}

fn group_fields(user: &str, group_id: &str) -> KasmResult<Fields> {
    Ok(fields(json!({
        "target_user": { "user_id": user_id(user)? },
        "target_group": { "group_id": normalize_id("group_id", group_id)? },
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The typed `get_kasm_status` body writes what the map of its fields wrote, byte for byte.
    #[test]
    fn the_status_request_body_is_the_map_body() {
        let kasm = "0ac5a4ec-2a8b-4c5b-8d4e-111111111111";
        let user = "5e3d2f1a4b6c4d8e9f0a1b2c3d4e5f60";
        for user in [None, Some(user)] {
            let mut map = session_fields(kasm, user).unwrap();
            map.insert("skip_agent_check".into(), Value::Bool(false));
            let id = kasm_id(kasm).unwrap();
            let user = opt_user_id(user).unwrap();
            let typed = StatusRequest {
                kasm_id: &id,
                skip_agent_check: false,
                user_id: user.as_deref(),
            };
            assert_eq!(
                serde_json::to_string(&typed).unwrap(),
                serde_json::to_string(&map).unwrap()
            );
        }
    }

    #[test]
    fn from_config_names_every_missing_setting() {
        let err = KasmClient::from_config(&KasmConfig::default()).unwrap_err();
        let text = err.to_string();
        for name in ["KASM_API_URL", "KASM_API_KEY", "KASM_API_SECRET"] {
            assert!(text.contains(name), "{text}");
        }
        let config = KasmConfig {
            api_url: Some("https://kasm.example.com/api/public".into()),
            api_key: Some("k".into()),
            api_secret: Some("s".into()),
            ..KasmConfig::default()
        };
        let client = KasmClient::from_config(&config).unwrap();
        assert_eq!(client.base_url(), "https://kasm.example.com");
    }

    #[test]
    fn unusable_ca_bundles_are_refused_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate").unwrap();
        for path in [garbage, dir.path().join("missing.pem")] {
            let options = ClientOptions {
                ca_bundle: Some(path.clone()),
                ..ClientOptions::default()
            };
            let err = KasmClient::new("https://kasm.example.com", "k".into(), "s".into(), options)
                .unwrap_err();
            assert!(
                matches!(&err, KasmError::InvalidArgument(m) if m.contains(&path.display().to_string())),
                "{err:?}"
            );
        }
    }
}
