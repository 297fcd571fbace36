//! Kasm user administration: `get_kasm_users`, `get_kasm_user`, `create_kasm_user`,
//! `update_kasm_user`, `delete_kasm_user`, `logout_kasm_user`. Passwords go to Kasm and
//! nowhere else.

use std::sync::Arc;

use schemars::JsonSchema;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::ToolDeps;
use super::schema::{self, NoArgs, parse_args};
use super::support::{FnTool, ToolError, ToolResult, handler, structured};
use crate::kasm::{NewUser, User, UserId, UserRef, UserUpdate};
use crate::mcp::{CallContext, Tool, ToolAnnotations, ToolSpec};
use crate::policy::Role;

const LIST: &str = "get_kasm_users";
const GET: &str = "get_kasm_user";
const CREATE: &str = "create_kasm_user";
const UPDATE: &str = "update_kasm_user";
const DELETE: &str = "delete_kasm_user";
const LOGOUT: &str = "logout_kasm_user";

pub fn tools(deps: &Arc<ToolDeps>) -> Vec<Arc<dyn Tool>> {
    vec![
        FnTool::shared(list_spec(), deps, handler!(list)),
        FnTool::shared(get_spec(), deps, handler!(get)),
        FnTool::shared(create_spec(), deps, handler!(create)),
        FnTool::shared(update_spec(), deps, handler!(update)),
        FnTool::shared(delete_spec(), deps, handler!(delete)),
        FnTool::shared(logout_spec(), deps, handler!(logout)),
    ]
}

/// A group the user belongs to.
#[derive(Debug, Serialize, JsonSchema)]
struct GroupView {
    group_id: Option<String>,
    name: Option<String>,
}

/// A Kasm user (no password, no tokens).
#[derive(Debug, Serialize, JsonSchema)]
struct UserView {
    user_id: String,
    username: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    organization: Option<String>,
    phone: Option<String>,
    realm: Option<String>,
    /// Locked users cannot log in.
    locked: Option<bool>,
    /// Disabled users cannot log in or be used.
    disabled: Option<bool>,
    groups: Vec<GroupView>,
    created: Option<String>,
    /// Kasm's record of the user's last session, as Kasm sends it.
    last_session: Option<Value>,
    /// How many sessions the user has.
    session_count: usize,
}

impl UserView {
    fn of(user: &User) -> Self {
        UserView {
            user_id: user.user_id.clone(),
            username: user.username.clone(),
            first_name: user.first_name.clone(),
            last_name: user.last_name.clone(),
            organization: user.organization.clone(),
            phone: user.phone.clone(),
            realm: user.realm.clone(),
            locked: user.locked,
            disabled: user.disabled,
            groups: user
                .groups
                .iter()
                .map(|g| GroupView {
                    group_id: g.group_id.clone(),
                    name: g.name.clone(),
                })
                .collect(),
            created: user.created.clone(),
            last_session: user.last_session.clone(),
            session_count: user.kasms.len(),
        }
    }
}

/// Result of the tools that return one user.
#[derive(Debug, Serialize, JsonSchema)]
struct OneUser {
    user: UserView,
}

fn one_user(user: &User) -> ToolResult {
    structured(&OneUser {
        user: UserView::of(user),
    })
}

/// Result of `get_kasm_users`.
#[derive(Debug, Serialize, JsonSchema)]
struct UserList {
    users: Vec<UserView>,
    count: usize,
}

/// Result of `delete_kasm_user` and `logout_kasm_user`.
#[derive(Debug, Serialize, JsonSchema)]
struct Done {
    user_id: UserId,
    /// What happened, in a sentence.
    message: String,
}

// ---- get_kasm_users / get_kasm_user --------------------------------------------------------

fn list_spec() -> ToolSpec {
    ToolSpec::builder(LIST, Role::Admin)
        .title("List Kasm users (admin)")
        .description("List the Kasm installation's users: user_id, username, names, lock/disable flags, groups and number of sessions. For administrators. One Kasm call (needs Users View); read-only.")
        .input_schema(schema::input::<NoArgs>())
        .output_schema(schema::output::<UserList>())
        .annotations(ToolAnnotations::read_only())
        .build()
}

async fn list(deps: Arc<ToolDeps>, _ctx: CallContext, args: Map<String, Value>) -> ToolResult {
    let NoArgs {} = parse_args(LIST, args)?;
    let users: Vec<UserView> = deps
        .kasm
        .get_users()
        .await?
        .iter()
        .map(UserView::of)
        .collect();
    structured(&UserList {
        count: users.len(),
        users,
    })
}

/// Arguments of `get_kasm_user`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct GetArgs {
    /// The Kasm user_id (UUID, dashes optional) of the user to show.
    #[serde(default)]
    user_id: Option<UserId>,
    /// The user's login name; use instead of user_id.
    #[serde(default)]
    username: Option<String>,
}

fn get_spec() -> ToolSpec {
    ToolSpec::builder(GET, Role::Admin)
        .title("Get a Kasm user (admin)")
        .description("Show one Kasm user, found by user_id or username: names, flags, groups, sessions. For administrators. One Kasm call (needs Users View); read-only.")
        .input_schema(schema::input::<GetArgs>())
        .output_schema(schema::output::<OneUser>())
        .annotations(ToolAnnotations::read_only())
        .build()
}

async fn get(deps: Arc<ToolDeps>, _ctx: CallContext, args: Map<String, Value>) -> ToolResult {
    let args: GetArgs = parse_args(GET, args)?;
    let who = match (args.user_id, args.username) {
        (Some(id), _) => UserRef::Id(id.to_string()),
        (None, Some(name)) if !name.trim().is_empty() => UserRef::Username(name),
        _ => return Err(ToolError::new("pass user_id or username")),
    };
    one_user(&deps.kasm.get_user(&who).await?)
}

// ---- create / update -----------------------------------------------------------------------

/// The profile fields `create_kasm_user` and `update_kasm_user` share; flattened into both
/// tools' arguments.
#[derive(Debug, Deserialize, JsonSchema, Default)]
struct ProfileArgs {
    /// Given name.
    #[serde(default)]
    first_name: Option<String>,
    /// Family name.
    #[serde(default)]
    last_name: Option<String>,
    /// Organization.
    #[serde(default)]
    organization: Option<String>,
    /// Phone number.
    #[serde(default)]
    phone: Option<String>,
    /// Locked users cannot log in.
    #[serde(default)]
    locked: Option<bool>,
    /// Disabled users cannot log in or be used.
    #[serde(default)]
    disabled: Option<bool>,
}

impl ProfileArgs {
    /// A new user: unset flags are false.
    fn into_new_user(self, username: String, password: SecretString) -> NewUser {
        NewUser {
            username,
            password: Some(password),
            first_name: self.first_name,
            last_name: self.last_name,
            organization: self.organization,
            phone: self.phone,
            locked: self.locked.unwrap_or(false),
            disabled: self.disabled.unwrap_or(false),
        }
    }

    /// A change: only the fields given are set.
    fn into_update(
        self,
        user_id: &UserId,
        username: Option<String>,
        password: Option<SecretString>,
    ) -> UserUpdate {
        UserUpdate {
            user_id: user_id.to_string(),
            username,
            password,
            first_name: self.first_name,
            last_name: self.last_name,
            organization: self.organization,
            phone: self.phone,
            locked: self.locked,
            disabled: self.disabled,
        }
    }
}

/// Arguments of `create_kasm_user` (unknown ones are refused by `parse_args`: serde cannot
/// deny them through `flatten`).
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
struct CreateArgs {
    /// Login name of the new user (unique).
    username: String,
    /// Initial password. Sent to Kasm only; never logged or returned.
    #[schemars(with = "String")]
    password: SecretString,
    #[serde(flatten)]
    profile: ProfileArgs,
}

fn create_spec() -> ToolSpec {
    ToolSpec::builder(CREATE, Role::Admin)
        .title("Create a Kasm user (admin)")
        .description("Create a Kasm user with a username and password (and optional names, organization, phone, locked/disabled flags); the user joins the default groups. Returns the new user_id. For administrators. One Kasm call (needs Users Create); not idempotent — a second call with the same username fails.")
        .input_schema(schema::input::<CreateArgs>())
        .output_schema(schema::output::<OneUser>())
        .annotations(ToolAnnotations::writes())
        .build()
}

async fn create(deps: Arc<ToolDeps>, _ctx: CallContext, args: Map<String, Value>) -> ToolResult {
    let args: CreateArgs = parse_args(CREATE, args)?;
    if args.username.trim().is_empty() || args.password.expose_secret().is_empty() {
        return Err(ToolError::new("username and password must not be empty"));
    }
    let user = deps
        .kasm
        .create_user(&args.profile.into_new_user(args.username, args.password))
        .await?;
    one_user(&user)
}

/// Arguments of `update_kasm_user` (unknown ones are refused by `parse_args`).
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
struct UpdateArgs {
    /// The Kasm user_id (UUID, dashes optional) of the user to change.
    user_id: UserId,
    /// New login name.
    #[serde(default)]
    username: Option<String>,
    /// New password. Sent to Kasm only; never logged or returned.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    password: Option<SecretString>,
    #[serde(flatten)]
    profile: ProfileArgs,
}

fn update_spec() -> ToolSpec {
    ToolSpec::builder(UPDATE, Role::Admin)
        .title("Update a Kasm user (admin)")
        .description("Change a Kasm user's fields: username, password, names, organization, phone, locked, disabled. Only the fields given change. For administrators; changing a password or locking a user affects their access immediately. One Kasm call (needs Users Modify).")
        .input_schema(schema::input::<UpdateArgs>())
        .output_schema(schema::output::<OneUser>())
        .annotations(ToolAnnotations::writes().destructive().idempotent())
        .build()
}

async fn update(deps: Arc<ToolDeps>, _ctx: CallContext, args: Map<String, Value>) -> ToolResult {
    let args: UpdateArgs = parse_args(UPDATE, args)?;
    let change = args
        .profile
        .into_update(&args.user_id, args.username, args.password);
    one_user(&deps.kasm.update_user(&change).await?)
}

// ---- delete / logout -----------------------------------------------------------------------

/// Arguments of `delete_kasm_user`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct DeleteArgs {
    /// The Kasm user_id (UUID, dashes optional) of the user to delete.
    user_id: UserId,
    /// Also destroy the user's running sessions (Kasm refuses to delete a user with sessions
    /// otherwise).
    #[serde(default)]
    force: bool,
}

fn delete_spec() -> ToolSpec {
    ToolSpec::builder(DELETE, Role::Admin)
        .title("Delete a Kasm user (admin)")
        .description("Delete a Kasm user permanently (with force: true, their sessions are destroyed too). For administrators; irreversible. One Kasm call (needs Users Delete).")
        .input_schema(schema::input::<DeleteArgs>())
        .output_schema(schema::output::<Done>())
        .annotations(ToolAnnotations::writes().destructive().idempotent())
        .build()
}

async fn delete(deps: Arc<ToolDeps>, _ctx: CallContext, args: Map<String, Value>) -> ToolResult {
    let args: DeleteArgs = parse_args(DELETE, args)?;
    deps.kasm
        .delete_user(args.user_id.as_str(), args.force)
        .await?;
    structured(&Done {
        user_id: args.user_id,
        message: "The user was deleted.".into(),
    })
}

/// Arguments of `logout_kasm_user`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct LogoutArgs {
    /// The Kasm user_id (UUID, dashes optional) of the user to log out.
    user_id: UserId,
}

fn logout_spec() -> ToolSpec {
    ToolSpec::builder(LOGOUT, Role::Admin)
        .title("Log a Kasm user out (admin)")
        .description("End all of a Kasm user's login sessions (browser logins and tokens), forcing them to log in again. Sessions (containers) keep running. For administrators. One Kasm call (needs Users Auth Session).")
        .input_schema(schema::input::<LogoutArgs>())
        .output_schema(schema::output::<Done>())
        .annotations(ToolAnnotations::writes().destructive().idempotent())
        .build()
}

async fn logout(deps: Arc<ToolDeps>, _ctx: CallContext, args: Map<String, Value>) -> ToolResult {
    let args: LogoutArgs = parse_args(LOGOUT, args)?;
    deps.kasm.logout_user(args.user_id.as_str()).await?;
    structured(&Done {
        user_id: args.user_id,
        message: "The user was logged out everywhere.".into(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const U1: &str = "8f6c1d2e3b4a4c5d9e0f1a2b3c4d5e6f";

    fn args(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn create_and_update_map_every_profile_field_the_same_way() {
        let profile = json!({
            "password": "pw-1", "first_name": "Ada", "last_name": "Lovelace",
            "organization": "Engines", "phone": "+44 1", "locked": true, "disabled": true,
        });
        let mut create = args(profile.clone());
        create.insert("username".into(), json!("ada"));
        let create: CreateArgs = parse_args(CREATE, create).unwrap();
        let new = create
            .profile
            .into_new_user(create.username, create.password);
        let mut update = args(profile.clone());
        update.insert("user_id".into(), json!(U1));
        let update: UpdateArgs = parse_args(UPDATE, update).unwrap();
        let change = update
            .profile
            .into_update(&update.user_id, update.username, update.password);
        // The request bodies Kasm gets (passwords are exposed only there).
        let new = serde_json::to_value(&new).unwrap();
        let change = serde_json::to_value(&change).unwrap();
        for (field, value) in args(profile) {
            assert_eq!(new[&field], value, "create: {field}");
            assert_eq!(change[&field], value, "update: {field}");
        }
        assert_eq!(new["username"], "ada");
        assert_eq!(change["user_id"], U1);
        assert!(change.get("username").is_none(), "{change}");

        // An update changes only what it names; a new user's unset flags are false.
        let only: UpdateArgs =
            parse_args(UPDATE, args(json!({"user_id": U1, "phone": "1"}))).unwrap();
        let only = only
            .profile
            .into_update(&only.user_id, only.username, only.password);
        assert_eq!(only.phone.as_deref(), Some("1"));
        assert!(only.password.is_none() && only.first_name.is_none() && only.locked.is_none());
        let plain = ProfileArgs::default().into_new_user("b".into(), SecretString::from("p"));
        assert!(!plain.locked && !plain.disabled);
    }

    #[test]
    fn flattened_arguments_still_refuse_unknown_and_missing_ones() {
        let err = parse_args::<CreateArgs>(
            CREATE,
            args(json!({"username": "a", "password": "p", "user_id": "x"})),
        )
        .err()
        .unwrap()
        .0;
        assert!(
            err.contains("unknown field `user_id`") && err.contains("first_name"),
            "{err}"
        );
        let err = parse_args::<CreateArgs>(CREATE, args(json!({"username": "a"})))
            .err()
            .unwrap()
            .0;
        assert!(err.contains("missing field `password`"), "{err}");
        let err = parse_args::<UpdateArgs>(UPDATE, args(json!({"first_name": "a"})))
            .err()
            .unwrap()
            .0;
        assert!(err.contains("missing field `user_id`"), "{err}");
    }

    #[test]
    fn the_flattened_schemas_are_closed_and_require_what_the_types_require() {
        let create = schema::input::<CreateArgs>();
        assert_eq!(create["additionalProperties"], json!(false), "{create}");
        let mut required: Vec<&str> = create["required"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        required.sort_unstable();
        assert_eq!(required, ["password", "username"]);
        assert!(create["properties"]["first_name"].is_object(), "{create}");
        let update = schema::input::<UpdateArgs>();
        assert_eq!(update["additionalProperties"], json!(false), "{update}");
        assert_eq!(update["required"], json!(["user_id"]));
    }
}
