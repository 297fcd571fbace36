//! Kasm user administration (`get_kasm_users`, `get_kasm_user`, `create_kasm_user`,
//! `update_kasm_user`, `delete_kasm_user`, `logout_kasm_user`) and
//! `diagnose_kasm_permissions`. Passwords go to Kasm and nowhere else.

use std::sync::Arc;

use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::ToolDeps;
use super::support::{
    FnTool, SpecBuilder, ToolError, ToolResult, argument_error, handler, hints, no_args, no_input,
    object_schema, output_schema, parse_args, parse_flattened_args,
};
use crate::kasm::diagnose::diagnose_permissions;
use crate::kasm::{NewUser, User, UserRef, UserUpdate, normalize_id};
use crate::mcp::{CallContext, Tool, ToolOutput, ToolSpec};
use crate::policy::Role;

pub fn tools(deps: &Arc<ToolDeps>) -> Vec<Arc<dyn Tool>> {
    vec![
        FnTool::shared(list_spec(), deps, handler!(list)),
        FnTool::shared(get_spec(), deps, handler!(get)),
        FnTool::shared(create_spec(), deps, handler!(create)),
        FnTool::shared(update_spec(), deps, handler!(update)),
        FnTool::shared(delete_spec(), deps, handler!(delete)),
        FnTool::shared(logout_spec(), deps, handler!(logout)),
        FnTool::shared(diagnose_spec(), deps, handler!(diagnose)),
    ]
}

fn nullable() -> Value {
    json!({"type": ["string", "null"]})
}

fn user_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "user_id": {"type": "string"},
            "username": nullable(),
            "first_name": nullable(),
            "last_name": nullable(),
            "organization": nullable(),
            "phone": nullable(),
            "realm": nullable(),
            "locked": {"type": ["boolean", "null"]},
            "disabled": {"type": ["boolean", "null"]},
            "groups": {"type": "array", "items": {"type": "object"}},
            "created": nullable(),
        },
        "required": ["user_id"],
    })
}

fn user_json(user: &User) -> Value {
    let groups: Vec<Value> = user
        .groups
        .iter()
        .map(|g| json!({"group_id": g.group_id, "name": g.name}))
        .collect();
    json!({
        "user_id": user.user_id,
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "organization": user.organization,
        "phone": user.phone,
        "realm": user.realm,
        "locked": user.locked,
        "disabled": user.disabled,
        "groups": groups,
        "created": user.created,
        "last_session": user.last_session,
        "session_count": user.kasms.len(),
    })
}

fn one_user_output() -> Value {
    output_schema(json!({"user": user_schema()}), &["user"])
}

fn user_id_param(what: &str) -> Value {
    json!({"type": "string", "description": format!("The Kasm user_id (UUID, dashes optional) of the user to {what}.")})
}

fn done_output() -> Value {
    output_schema(
        json!({"user_id": {"type": "string"}, "message": {"type": "string"}}),
        &["user_id", "message"],
    )
}

// ---- get_kasm_users / get_kasm_user --------------------------------------------------------

fn list_spec() -> ToolSpec {
    SpecBuilder {
        name: "get_kasm_users",
        title: "List Kasm users (admin)",
        description: "List the Kasm installation's users: user_id, username, names, lock/disable flags, groups and number of sessions. For administrators. One Kasm call (needs Users View); read-only.",
        input: no_input(),
        output: Some(output_schema(
            json!({"users": {"type": "array", "items": user_schema()}, "count": {"type": "integer"}}),
            &["users", "count"],
        )),
        annotations: hints(true, false, true, false),
        min_role: Role::Admin,
    }
    .build()
}

async fn list(deps: Arc<ToolDeps>, _ctx: CallContext, args: Map<String, Value>) -> ToolResult {
    no_args("get_kasm_users", args)?;
    let users = deps.kasm.get_users().await?;
    let list: Vec<Value> = users.iter().map(user_json).collect();
    Ok(ToolOutput::structured(
        json!({"count": list.len(), "users": list}),
    ))
}

fn get_input() -> Value {
    object_schema(
        json!({
            "user_id": user_id_param("show"),
            "username": {"type": "string", "description": "The user's login name; use instead of user_id."}
        }),
        &[],
    )
}

fn get_spec() -> ToolSpec {
    SpecBuilder {
        name: "get_kasm_user",
        title: "Get a Kasm user (admin)",
        description: "Show one Kasm user, found by user_id or username: names, flags, groups, sessions. For administrators. One Kasm call (needs Users View); read-only.",
        input: get_input(),
        output: Some(one_user_output()),
        annotations: hints(true, false, true, false),
        min_role: Role::Admin,
    }
    .build()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GetArgs {
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    username: Option<String>,
}

async fn get(deps: Arc<ToolDeps>, _ctx: CallContext, args: Map<String, Value>) -> ToolResult {
    let args: GetArgs = parse_args("get_kasm_user", &get_input(), args)?;
    let who = match (args.user_id, args.username) {
        (Some(id), _) => UserRef::Id(normalize_id("user_id", &id)?),
        (None, Some(name)) if !name.trim().is_empty() => UserRef::Username(name),
        _ => return Err(ToolError::new("pass user_id or username")),
    };
    let user = deps.kasm.get_user(&who).await?;
    Ok(ToolOutput::structured(json!({"user": user_json(&user)})))
}

// ---- create / update -----------------------------------------------------------------------

fn profile_properties() -> Map<String, Value> {
    let props = json!({
        "password": {"type": "string", "description": "Initial or new password. Sent to Kasm only; never logged or returned."},
        "first_name": {"type": "string", "description": "Given name."},
        "last_name": {"type": "string", "description": "Family name."},
        "organization": {"type": "string", "description": "Organization."},
        "phone": {"type": "string", "description": "Phone number."},
        "locked": {"type": "boolean", "description": "Locked users cannot log in."},
        "disabled": {"type": "boolean", "description": "Disabled users cannot log in or be used."}
    });
    match props {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn create_input() -> Value {
    let mut props = profile_properties();
    props.insert(
        "username".into(),
        json!({"type": "string", "description": "Login name of the new user (unique)."}),
    );
    object_schema(Value::Object(props), &["username", "password"])
}

fn create_spec() -> ToolSpec {
    SpecBuilder {
        name: CREATE,
        title: "Create a Kasm user (admin)",
        description: "Create a Kasm user with a username and password (and optional names, organization, phone, locked/disabled flags); the user joins the default groups. Returns the new user_id. For administrators. One Kasm call (needs Users Create); not idempotent — a second call with the same username fails.",
        input: create_input(),
        output: Some(one_user_output()),
        annotations: hints(false, false, false, false),
        min_role: Role::Admin,
    }
    .build()
}

/// The profile fields `create_kasm_user` and `update_kasm_user` share
/// ([`profile_properties`]); flattened into both tools' arguments.
#[derive(Deserialize, Default)]
struct ProfileArgs {
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    organization: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    locked: Option<bool>,
    #[serde(default)]
    disabled: Option<bool>,
}

impl ProfileArgs {
    /// A new user: unset flags are false.
    fn into_new_user(self, username: String) -> NewUser {
        NewUser {
            username,
            password: self.password.map(SecretString::from),
            first_name: self.first_name,
            last_name: self.last_name,
            organization: self.organization,
            phone: self.phone,
            locked: self.locked.unwrap_or(false),
            disabled: self.disabled.unwrap_or(false),
        }
    }

    /// A change: only the fields given are set.
    fn into_update(self, user_id: String, username: Option<String>) -> UserUpdate {
        UserUpdate {
            user_id,
            username,
            password: self.password.map(SecretString::from),
            first_name: self.first_name,
            last_name: self.last_name,
            organization: self.organization,
            phone: self.phone,
            locked: self.locked,
            disabled: self.disabled,
        }
    }
}

#[derive(Deserialize)]
struct CreateArgs {
    username: String,
    #[serde(flatten)]
    profile: ProfileArgs,
}

const CREATE: &str = "create_kasm_user";

async fn create(deps: Arc<ToolDeps>, _ctx: CallContext, args: Map<String, Value>) -> ToolResult {
    let schema = create_input();
    let args: CreateArgs = parse_flattened_args(CREATE, &schema, args)?;
    if args.profile.password.is_none() {
        return Err(argument_error(CREATE, &schema, "missing field `password`"));
    }
    if args.username.trim().is_empty() || args.profile.password.as_deref() == Some("") {
        return Err(ToolError::new("username and password must not be empty"));
    }
    let user = deps
        .kasm
        .create_user(&args.profile.into_new_user(args.username))
        .await?;
    Ok(ToolOutput::structured(json!({"user": user_json(&user)})))
}

fn update_input() -> Value {
    let mut props = profile_properties();
    props.insert("user_id".into(), user_id_param("change"));
    props.insert(
        "username".into(),
        json!({"type": "string", "description": "New login name."}),
    );
    object_schema(Value::Object(props), &["user_id"])
}

fn update_spec() -> ToolSpec {
    SpecBuilder {
        name: "update_kasm_user",
        title: "Update a Kasm user (admin)",
        description: "Change a Kasm user's fields: username, password, names, organization, phone, locked, disabled. Only the fields given change. For administrators; changing a password or locking a user affects their access immediately. One Kasm call (needs Users Modify).",
        input: update_input(),
        output: Some(one_user_output()),
        annotations: hints(false, true, true, false),
        min_role: Role::Admin,
    }
    .build()
}

#[derive(Deserialize)]
struct UpdateArgs {
    user_id: String,
    #[serde(default)]
    username: Option<String>,
    #[serde(flatten)]
    profile: ProfileArgs,
}

async fn update(deps: Arc<ToolDeps>, _ctx: CallContext, args: Map<String, Value>) -> ToolResult {
    let args: UpdateArgs = parse_flattened_args("update_kasm_user", &update_input(), args)?;
    let user_id = normalize_id("user_id", &args.user_id)?;
    let user = deps
        .kasm
        .update_user(&args.profile.into_update(user_id, args.username))
        .await?;
    Ok(ToolOutput::structured(json!({"user": user_json(&user)})))
}

// ---- delete / logout -----------------------------------------------------------------------

fn delete_input() -> Value {
    object_schema(
        json!({
            "user_id": user_id_param("delete"),
            "force": {"type": "boolean", "description": "Also destroy the user's running sessions (Kasm refuses to delete a user with sessions otherwise). Default false."}
        }),
        &["user_id"],
    )
}

fn delete_spec() -> ToolSpec {
    SpecBuilder {
        name: "delete_kasm_user",
        title: "Delete a Kasm user (admin)",
        description: "Delete a Kasm user permanently (with force: true, their sessions are destroyed too). For administrators; irreversible. One Kasm call (needs Users Delete).",
        input: delete_input(),
        output: Some(done_output()),
        annotations: hints(false, true, true, false),
        min_role: Role::Admin,
    }
    .build()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteArgs {
    user_id: String,
    #[serde(default)]
    force: bool,
}

async fn delete(deps: Arc<ToolDeps>, _ctx: CallContext, args: Map<String, Value>) -> ToolResult {
    let args: DeleteArgs = parse_args("delete_kasm_user", &delete_input(), args)?;
    let id = normalize_id("user_id", &args.user_id)?;
    deps.kasm.delete_user(&id, args.force).await?;
    Ok(ToolOutput::structured(
        json!({"user_id": id, "message": "The user was deleted."}),
    ))
}

fn logout_input() -> Value {
    object_schema(json!({"user_id": user_id_param("log out")}), &["user_id"])
}

fn logout_spec() -> ToolSpec {
    SpecBuilder {
        name: "logout_kasm_user",
        title: "Log a Kasm user out (admin)",
        description: "End all of a Kasm user's login sessions (browser logins and tokens), forcing them to log in again. Sessions (containers) keep running. For administrators. One Kasm call (needs Users Auth Session).",
        input: logout_input(),
        output: Some(done_output()),
        annotations: hints(false, true, true, false),
        min_role: Role::Admin,
    }
    .build()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogoutArgs {
    user_id: String,
}

async fn logout(deps: Arc<ToolDeps>, _ctx: CallContext, args: Map<String, Value>) -> ToolResult {
    let args: LogoutArgs = parse_args("logout_kasm_user", &logout_input(), args)?;
    let id = normalize_id("user_id", &args.user_id)?;
    deps.kasm.logout_user(&id).await?;
    Ok(ToolOutput::structured(
        json!({"user_id": id, "message": "The user was logged out everywhere."}),
    ))
}

// ---- diagnose_kasm_permissions -------------------------------------------------------------

fn diagnose_spec() -> ToolSpec {
    SpecBuilder {
        name: "diagnose_kasm_permissions",
        title: "Diagnose Kasm API permissions",
        description: "Find out which Kasm API-key permissions this server has and which are missing, with probes that change nothing (reads, and session calls on a kasm_id that matches no session). Use it when tools fail with permission errors, or once after setup. About eight cheap Kasm calls; read-only.",
        input: no_input(),
        output: Some(output_schema(
            json!({
                "verdict": {"type": "string", "enum": ["ok", "missing_permissions", "bad_credentials", "unreachable"]},
                "problem": nullable(),
                "probes": {"type": "array", "items": {"type": "object"}},
                "missing": {"type": "array", "items": {"type": "string"}},
                "granted": {"type": "array", "items": {"type": "string"}},
                "advice": {"type": "array", "items": {"type": "string"}},
            }),
            &["verdict", "probes", "missing", "granted", "advice"],
        )),
        annotations: hints(true, false, true, false),
        min_role: Role::Operator,
    }
    .build()
}

async fn diagnose(deps: Arc<ToolDeps>, ctx: CallContext, args: Map<String, Value>) -> ToolResult {
    no_args("diagnose_kasm_permissions", args)?;
    let user = ctx
        .principal
        .kasm_user_id
        .clone()
        .or_else(|| deps.default_user_id.clone());
    let report = diagnose_permissions(deps.kasm.as_ref(), user.as_deref()).await;
    let value = serde_json::to_value(&report)
        .map_err(|e| ToolError::new(format!("could not encode the report: {e}")))?;
    Ok(ToolOutput::structured(value))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let create: CreateArgs = parse_flattened_args(CREATE, &create_input(), create).unwrap();
        let new = create.profile.into_new_user(create.username);
        let mut update = args(profile.clone());
        update.insert("user_id".into(), json!("u1"));
        let update: UpdateArgs =
            parse_flattened_args("update_kasm_user", &update_input(), update).unwrap();
        let change = update.profile.into_update(update.user_id, update.username);
        // The request bodies Kasm gets (passwords are exposed only there).
        let new = serde_json::to_value(&new).unwrap();
        let change = serde_json::to_value(&change).unwrap();
        for (field, value) in args(profile) {
            assert_eq!(new[&field], value, "create: {field}");
            assert_eq!(change[&field], value, "update: {field}");
        }
        assert_eq!(new["username"], "ada");
        assert_eq!(change["user_id"], "u1");
        assert!(change.get("username").is_none(), "{change}");

        // An update changes only what it names; a new user's unset flags are false.
        let only: UpdateArgs = parse_flattened_args(
            "update_kasm_user",
            &update_input(),
            args(json!({"user_id": "u1", "phone": "1"})),
        )
        .unwrap();
        let only = only.profile.into_update(only.user_id, only.username);
        assert_eq!(only.phone.as_deref(), Some("1"));
        assert!(only.password.is_none() && only.first_name.is_none() && only.locked.is_none());
        let plain = ProfileArgs::default().into_new_user("b".into());
        assert!(!plain.locked && !plain.disabled);
    }

    #[test]
    fn flattened_arguments_still_refuse_unknown_and_missing_ones() {
        let err = parse_flattened_args::<CreateArgs>(
            CREATE,
            &create_input(),
            args(json!({"username": "a", "password": "p", "user_id": "x"})),
        )
        .err()
        .unwrap()
        .0;
        assert!(
            err.contains("unknown field `user_id`") && err.contains("first_name"),
            "{err}"
        );
        let err = parse_flattened_args::<UpdateArgs>(
            "update_kasm_user",
            &update_input(),
            args(json!({"first_name": "a"})),
        )
        .err()
        .unwrap()
        .0;
        assert!(err.contains("missing field `user_id`"), "{err}");
    }
}
