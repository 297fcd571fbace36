//! User endpoints: create, read, update, attributes, groups, login links, logout, delete, and their errors.

use std::collections::BTreeSet;

use kasm_mcp::kasm::{KasmApi, KasmError, NewUser, UserRef, UserUpdate};
use kasm_mcp::simulator::SimulatorConfig;
use serde_json::{Map, Value};

use super::support::*;

#[tokio::test]
async fn users_groups_and_attributes() {
    let sim = simulator(SimulatorConfig::default()).await;
    let api = client(&sim);
    let created = api
        .create_user(&NewUser {
            username: "bob@example.com".into(),
            password: Some("correct horse".to_string().into()),
            first_name: Some("Bob".into()),
            ..NewUser::default()
        })
        .await
        .unwrap();
    let id = created.user_id.clone();
    assert_eq!(created.username.as_deref(), Some("bob@example.com"));
    let err = api
        .create_user(&NewUser {
            username: "bob@example.com".into(),
            ..NewUser::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            KasmError::Api {
                endpoint: "create_user",
                ..
            }
        ),
        "{err:?}"
    );

    assert_eq!(
        api.get_user(&UserRef::Id(id.clone()))
            .await
            .unwrap()
            .user_id,
        id
    );
    assert_eq!(
        api.get_user(&UserRef::Username("bob@example.com".into()))
            .await
            .unwrap()
            .user_id,
        id
    );
    let users = api.get_users().await.unwrap();
    assert!(users.iter().any(|u| u.user_id == id));

    let updated = api
        .update_user(&UserUpdate {
            user_id: id.clone(),
            last_name: Some("Williams".into()),
            ..UserUpdate::default()
        })
        .await
        .unwrap();
    assert_eq!(updated.last_name.as_deref(), Some("Williams"));

    let mut attributes = Map::new();
    attributes.insert("preferred_language".into(), Value::String("de".into()));
    api.update_user_attributes(&id, &attributes).await.unwrap();
    let read = api.get_attributes(&id).await.unwrap();
    assert_eq!(
        read.get("preferred_language"),
        Some(&Value::String("de".into()))
    );

    // A group the new user is not in, found from the seeded users.
    let mine: BTreeSet<String> = created
        .groups
        .iter()
        .filter_map(|g| g.group_id.clone())
        .collect();
    let other = users
        .iter()
        .flat_map(|u| u.groups.iter().filter_map(|g| g.group_id.clone()))
        .find(|g| !mine.contains(g))
        .expect("a seeded user belongs to another group");
    api.add_user_group(&id, &other).await.unwrap();
    let groups = api.get_user(&UserRef::Id(id.clone())).await.unwrap().groups;
    assert!(
        groups
            .iter()
            .any(|g| g.group_id.as_deref() == Some(other.as_str()))
    );
    let err = api.add_user_group(&id, &other).await.unwrap_err();
    assert!(matches!(err, KasmError::InvalidRequest { .. }), "{err:?}");
    api.remove_user_group(&id, &other).await.unwrap();
    let err = api.remove_user_group(&id, &other).await.unwrap_err();
    assert!(matches!(err, KasmError::InvalidRequest { .. }), "{err:?}");

    let url = api.get_login(&id).await.unwrap();
    assert!(url.contains("/#/connect/login/dash/"), "{url}");
    api.logout_user(&id).await.unwrap();
    api.delete_user(&id, false).await.unwrap();

    // Every user call on a user that no longer exists.
    let gone = |name: &str, r: Result<(), KasmError>| {
        assert!(
            matches!(r, Err(KasmError::NotFound { what: "user", .. })),
            "{name}: {r:?}"
        );
    };
    let err = api.get_user(&UserRef::Id(id.clone())).await.unwrap_err();
    assert!(
        matches!(err, KasmError::NotFound { what: "user", .. }),
        "{err:?}"
    );
    gone(
        "update_user",
        api.update_user(&UserUpdate {
            user_id: id.clone(),
            phone: Some("1".into()),
            ..UserUpdate::default()
        })
        .await
        .map(drop),
    );
    gone("delete_user", api.delete_user(&id, true).await);
    gone("logout_user", api.logout_user(&id).await);
    gone("get_login", api.get_login(&id).await.map(drop));
    gone("get_attributes", api.get_attributes(&id).await.map(drop));
    // Kasm's wording here is "Missing or invalid user": a plain refusal.
    let err = api
        .update_user_attributes(&id, &attributes)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, KasmError::Api { message, .. } if message.contains("invalid user")),
        "{err:?}"
    );
    sim.shutdown().await;
}
