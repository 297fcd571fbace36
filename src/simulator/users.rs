//! User, group and attribute endpoints over the in-memory store (§2.8 shapes and errors).

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::ctx::{Ctx, IdField};
use super::render::{listed_user, user_kasm_summary, user_record};
use super::reply::Reply;
use super::state::{Store, UserRecord, group};
use crate::kasm::normalize_id;
use crate::kasm::permissions::names;

const MISSING: &str = "Invalid Request: Missing required parameters";
const GROUPS_VIEW: &str = "Groups View";

fn user_json(store: &Store, u: &UserRecord) -> Value {
    let kasms = store
        .sessions_of(&u.user_id)
        .map(user_kasm_summary)
        .collect();
    user_record(u, kasms)
}

/// `target_user.user_id` as a normalised id, if it is a UUID.
fn target_user_id(ctx: &Ctx<'_>) -> IdField {
    match ctx.object("target_user") {
        Some(t) => Ctx::id_in(t, "user_id"),
        None => IdField::Missing,
    }
}

/// `get_users`: optional `anonymous`/`anonymous_only`, `page`/`page_size` (1-based).
pub fn get_users(ctx: &Ctx<'_>) -> Reply {
    let store = ctx.shared.store();
    let anonymous = ctx.body.get("anonymous").and_then(Value::as_bool) == Some(true);
    let anonymous_only = ctx.body.get("anonymous_only").and_then(Value::as_bool) == Some(true);
    let mut users: Vec<&UserRecord> = store
        .users
        .values()
        .filter(|u| {
            if anonymous_only {
                u.anonymous
            } else {
                anonymous || !u.anonymous
            }
        })
        .collect();
    users.sort_by(|a, b| b.created.cmp(&a.created).then(a.username.cmp(&b.username)));
    let total = users.len();
    let page = ctx.body.get("page").and_then(Value::as_u64);
    let page_size = ctx.body.get("page_size").and_then(Value::as_u64);
    if let (Some(page), Some(size)) = (page, page_size) {
        let size = usize::try_from(size.max(1)).unwrap_or(usize::MAX);
        let skip = usize::try_from(page.saturating_sub(1))
            .unwrap_or(usize::MAX)
            .saturating_mul(size);
        users = users.into_iter().skip(skip).take(size).collect();
    }
    let with_kasms = ctx.has(names::SESSIONS_VIEW);
    let with_groups = ctx.has(GROUPS_VIEW);
    let list: Vec<Value> = users
        .iter()
        .map(|u| {
            let kasms = with_kasms.then(|| {
                store
                    .sessions_of(&u.user_id)
                    .map(user_kasm_summary)
                    .collect()
            });
            listed_user(u, kasms, with_groups)
        })
        .collect();
    let mut body = json!({ "users": list, "total": total });
    if let (Some(page), Some(obj)) = (page, body.as_object_mut()) {
        obj.insert("page".into(), json!(page));
    }
    Reply::ok(body)
}

/// `get_user` by `target_user.user_id` or `target_user.username`.
pub fn get_user(ctx: &Ctx<'_>) -> Reply {
    let Some(target) = ctx.object("target_user") else {
        return Reply::error(MISSING);
    };
    let store = ctx.shared.store();
    let found = match (
        Ctx::str_in(target, "user_id"),
        Ctx::str_in(target, "username"),
    ) {
        (Some(raw), _) => normalize_id("user_id", raw)
            .ok()
            .and_then(|id| store.users.get(&id))
            .ok_or_else(|| raw.to_string()),
        (None, Some(name)) => store.user_by_name(name).ok_or_else(|| name.to_string()),
        (None, None) => return Reply::error(MISSING),
    };
    match found {
        Ok(u) => Reply::ok(json!({ "user": user_json(&store, u) })),
        Err(who) => Reply::error(format!("Unknown user ({who})")),
    }
}

fn apply_fields(u: &mut UserRecord, t: &Map<String, Value>) {
    let text = |name: &str| t.get(name).and_then(Value::as_str).map(str::to_string);
    for (name, slot) in [
        ("first_name", &mut u.first_name),
        ("last_name", &mut u.last_name),
        ("phone", &mut u.phone),
        ("organization", &mut u.organization),
        ("notes", &mut u.notes),
    ] {
        if let Some(v) = text(name) {
            *slot = Some(v);
        }
    }
    if let Some(b) = t.get("locked").and_then(Value::as_bool) {
        u.locked = b;
    }
    if let Some(b) = t.get("disabled").and_then(Value::as_bool) {
        u.disabled = b;
    }
}

/// `create_user` from `target_user` (username required and unique).
pub fn create_user(ctx: &Ctx<'_>) -> Reply {
    let Some(target) = ctx.object("target_user") else {
        return Reply::error(MISSING);
    };
    let Some(username) = Ctx::str_in(target, "username").map(str::trim) else {
        return Reply::error(MISSING);
    };
    let mut store = ctx.shared.store();
    if store.user_by_name(username).is_some() {
        return Reply::error("Username already exists");
    }
    let mut user = UserRecord::new(super::config::random_hex(16), username.to_string());
    apply_fields(&mut user, target);
    let body = json!({ "user": user_json(&store, &user) });
    store.users.insert(user.user_id.clone(), user);
    Reply::ok(body)
}

/// `update_user`: change the given fields of `target_user.user_id`.
pub fn update_user(ctx: &Ctx<'_>) -> Reply {
    let (id, raw) = match target_user_id(ctx) {
        IdField::Missing => return Reply::error(MISSING),
        IdField::Invalid(raw) => (None, raw),
        IdField::Valid(id) => (Some(id.clone()), id),
    };
    let Some(target) = ctx.object("target_user") else {
        return Reply::error(MISSING);
    };
    let mut store = ctx.shared.store();
    let Some(id) = id.filter(|id| store.users.contains_key(id)) else {
        return Reply::error(format!("Unknown user ({raw})"));
    };
    if let Some(name) = Ctx::str_in(target, "username").map(str::trim)
        && store.user_by_name(name).is_some_and(|u| u.user_id != id)
    {
        return Reply::error("Username already exists");
    }
    let Some(user) = store.users.get_mut(&id) else {
        return Reply::error(format!("Unknown user ({raw})"));
    };
    if let Some(name) = Ctx::str_in(target, "username").map(str::trim) {
        user.username = name.to_string();
    }
    apply_fields(user, target);
    let user = user.clone();
    Reply::ok(json!({ "user": user_json(&store, &user) }))
}

/// `delete_user`: refuses while the user has sessions unless `force` is true.
pub async fn delete_user(ctx: &Ctx<'_>) -> Reply {
    let force = match ctx.body.get("force") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Reply::error("Invalid Request. 'force' option must be boolean"),
    };
    let (id, raw) = match target_user_id(ctx) {
        IdField::Missing => return Reply::error(MISSING),
        IdField::Invalid(raw) => (None, raw),
        IdField::Valid(id) => (Some(id.clone()), id),
    };
    let doomed: Vec<String> = {
        let mut store = ctx.shared.store();
        let Some(id) = id.filter(|id| store.users.contains_key(id)) else {
            return Reply::error(format!("Unknown user ({raw})"));
        };
        let sessions: Vec<String> = store.sessions_of(&id).map(|s| s.kasm_id.clone()).collect();
        if !sessions.is_empty() && !force {
            return Reply::error(format!(
                "Users contains ({}) kasms and 'force' option not set to True",
                sessions.len()
            ));
        }
        for kasm_id in &sessions {
            store.sessions.remove(kasm_id);
        }
        store.users.remove(&id);
        sessions
    };
    for kasm_id in doomed {
        ctx.shared.sandbox.destroy(&kasm_id).await;
    }
    Reply::empty_object()
}

/// `logout_user`: ends the user's browser sessions (nothing to end here).
pub fn logout_user(ctx: &Ctx<'_>) -> Reply {
    let Some(target) = ctx.object("target_user") else {
        return Reply::error("Invalid Request: Missing required target_user");
    };
    let Some(raw) = Ctx::str_in(target, "user_id") else {
        return Reply::error("Invalid Request: Missing required user_id");
    };
    let store = ctx.shared.store();
    match normalize_id("user_id", raw) {
        Ok(id) if store.users.contains_key(&id) => Reply::empty_object(),
        _ => Reply::error(format!("Unknown user ({raw})")),
    }
}

/// `get_login`: a one-click login URL (errors are HTTP 400).
pub fn get_login(ctx: &Ctx<'_>) -> Reply {
    let bad = |m: String| Reply::status_error(StatusCode::BAD_REQUEST, m);
    let raw = match target_user_id(ctx) {
        IdField::Missing => return bad(MISSING.into()),
        IdField::Invalid(raw) => return bad(format!("No user found with id: ({raw})")),
        IdField::Valid(id) => id,
    };
    if !ctx.shared.store().users.contains_key(&raw) {
        return bad(format!("No user found with id: ({raw})"));
    }
    let token = uuid::Uuid::new_v4().hyphenated().to_string();
    Reply::ok(json!({
        "url": format!("https://{}/#/connect/login/dash/{raw}/{token}", ctx.host)
    }))
}

/// `get_attributes`: the user's preferences.
pub fn get_attributes(ctx: &Ctx<'_>) -> Reply {
    let raw = match target_user_id(ctx) {
        IdField::Missing => return Reply::error(MISSING),
        IdField::Invalid(raw) => return Reply::error(format!("Unknown user ({raw})")),
        IdField::Valid(id) => id,
    };
    let store = ctx.shared.store();
    let Some(user) = store.users.get(&raw) else {
        return Reply::error(format!("Unknown user ({raw})"));
    };
    let mut attrs = user.attributes.clone();
    attrs.insert("user_id".into(), json!(user.user_id));
    Reply::ok(json!({ "user_attributes": attrs }))
}

/// `update_user_attributes` from `target_user_attributes: {user_id, …}`.
pub fn update_user_attributes(ctx: &Ctx<'_>) -> Reply {
    let Some(target) = ctx.object("target_user_attributes") else {
        return Reply::error("No target user attribute in request");
    };
    let id = match Ctx::id_in(target, "user_id") {
        IdField::Valid(id) => id,
        _ => return Reply::error("Missing or invalid user"),
    };
    if let Some(key) = target.get("ssh_private_key").and_then(Value::as_str)
        && !key.trim_start().starts_with("-----BEGIN")
    {
        return Reply::error("Error processing SSH Private Key: (Could not deserialize key data)");
    }
    let mut store = ctx.shared.store();
    let Some(user) = store.users.get_mut(&id) else {
        return Reply::error("Missing or invalid user");
    };
    for (k, v) in target {
        if k != "user_id" && k != "ssh_private_key" {
            user.attributes.insert(k.clone(), v.clone());
        }
    }
    Reply::empty_object()
}

/// `add_user_group` (`add` true) / `remove_user_group`: errors are HTTP 400.
pub fn add_user_group(ctx: &Ctx<'_>, add: bool) -> Reply {
    let bad = |m: String| Reply::status_error(StatusCode::BAD_REQUEST, m);
    let user_field = target_user_id(ctx);
    let group_field = match ctx.object("target_group") {
        Some(g) => Ctx::id_in(g, "group_id"),
        None => IdField::Missing,
    };
    let (user_id, group_id) = match (user_field, group_field) {
        (IdField::Missing, _) | (_, IdField::Missing) => return bad(MISSING.into()),
        (IdField::Invalid(u), _) => return bad(format!("Invalid User ID ({u})")),
        (_, IdField::Invalid(g)) => return bad(format!("Invalid Group ID ({g})")),
        (IdField::Valid(u), IdField::Valid(g)) => (u, g),
    };
    let mut store = ctx.shared.store();
    let Some(user) = store.users.get_mut(&user_id) else {
        return bad(format!("Invalid User ID ({user_id})"));
    };
    let Some(group) = group(&group_id) else {
        return bad(format!("Invalid Group ID ({group_id})"));
    };
    let member = user.groups.iter().any(|g| g == group.group_id);
    match (add, member) {
        (true, true) => bad(format!(
            "User ({}) is already a member of group ({})",
            user.username, group.name
        )),
        (false, false) => bad(format!(
            "User ({}) is not a member of group ({})",
            user.username, group.name
        )),
        (true, false) => {
            user.groups.push(group.group_id.to_string());
            Reply::empty_object()
        }
        (false, true) => {
            user.groups.retain(|g| g != group.group_id);
            Reply::empty_object()
        }
    }
}

/// `get_images`: the catalogue.
pub fn get_images() -> Reply {
    let images: Vec<Value> = super::images::IMAGES.iter().map(|i| i.record()).collect();
    Reply::ok(json!({ "images": images }))
}
