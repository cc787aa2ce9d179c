//! core's API over HTTP, each scenario on both stacks: organisations, members, the permission
//! matrix cell by cell, the last-owner rule under concurrency, tenant isolation, bad input that
//! writes nothing, crypto-shredding on delete, and tokens checked by core itself.

use std::time::{Duration, Instant};

use http::Method;
use rampart_core::permissions::{Action, Role, allows};
use rampart_store::Table;
use serde_json::json;

use crate::stack::{Stack, User};

/// Runs a scenario once per stack.
macro_rules! on_both_stacks {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test]
            async fn embedded() {
                super::$scenario(&super::Stack::embedded().await).await;
            }
            #[tokio::test]
            async fn aws_on_moto() {
                super::$scenario(&super::Stack::aws().await).await;
            }
        }
    )*};
}

on_both_stacks!(
    organisations_are_created_listed_renamed_and_hidden_from_other_tenants,
    bad_input_is_refused_naming_the_field_and_writes_nothing,
    members_are_managed_by_role_and_the_last_owner_stays,
    two_owners_demoting_each_other_at_once_leave_one_owner,
    deleting_an_organisation_destroys_its_keys_then_its_items,
    an_organisation_being_deleted_answers_404_and_its_owner_can_finish,
    core_checks_every_token_itself,
);

async fn organisations_are_created_listed_renamed_and_hidden_from_other_tenants(stack: &Stack) {
    let (ada, eve) = (stack.user().await, stack.user().await);
    let created = stack
        .call(&ada, Method::POST, "/v1/orgs", Some(json!({"name": "  Acme  "})))
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let org = created.body["id"].as_str().expect("id").to_owned();
    assert_eq!(created.headers["location"], format!("/v1/orgs/{org}").as_str());
    assert_eq!(
        (&created.body["name"], &created.body["role"]),
        (&json!("Acme"), &json!("owner"))
    );

    let listed = stack.get(&ada, "/v1/orgs").await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body["items"][0]["id"], org.as_str());

    let renamed = stack
        .call(
            &ada,
            Method::PATCH,
            &format!("/v1/orgs/{org}"),
            Some(json!({"name": "Acme Ltd"})),
        )
        .await;
    assert_eq!((renamed.status, &renamed.body["name"]), (200, &json!("Acme Ltd")));
    assert_eq!(
        stack.get(&ada, &format!("/v1/orgs/{org}")).await.body["name"],
        "Acme Ltd"
    );

    // Another tenant sees nothing: 404 for every verb, the same as for no organisation at all,
    // and an empty list.
    let nowhere = format!("/v1/orgs/{}", uuid_like());
    for path in [format!("/v1/orgs/{org}"), nowhere] {
        let read = stack.get(&eve, &path).await;
        assert_eq!(read.status, 404, "{read:?}");
        let renamed = stack
            .call(&eve, Method::PATCH, &path, Some(json!({"name": "Mine"})))
            .await;
        assert_eq!(renamed.status, 404);
        assert_eq!(stack.call(&eve, Method::DELETE, &path, None).await.status, 404);
        assert_eq!(stack.get(&eve, &format!("{path}/members")).await.status, 404);
        assert_eq!(
            stack.add(&eve, &path["/v1/orgs/".len()..], &eve, "owner").await.status,
            404
        );
        assert!(!read.body.to_string().contains("Acme"));
    }
    assert_eq!(stack.get(&eve, "/v1/orgs").await.body["items"], json!([]));
    assert_eq!(
        stack.get(&ada, &format!("/v1/orgs/{org}")).await.body["name"],
        "Acme Ltd"
    );
}

fn uuid_like() -> String {
    let hex = rampart_testkit::unique_suffix();
    format!("00000000-0000-4000-8000-{hex}")
}

async fn bad_input_is_refused_naming_the_field_and_writes_nothing(stack: &Stack) {
    let ada = stack.user().await;
    let org = stack.org(&ada, "Acme").await;
    let path = format!("/v1/orgs/{org}");
    let too_long = "x".repeat(101);
    for (body, status, pointer) in [
        (json!({"name": ""}), 422, Some("/name")),
        (json!({"name": too_long}), 422, Some("/name")),
        (json!({"name": "tab\there"}), 422, Some("/name")),
        (json!({"name": 7}), 422, Some("/name")),
        (json!({"name": "Acme", "owner": "me"}), 422, Some("")),
    ] {
        for (method, path) in [(Method::POST, "/v1/orgs"), (Method::PATCH, path.as_str())] {
            let reply = stack.call(&ada, method.clone(), path, Some(body.clone())).await;
            assert_eq!(reply.status, status, "{method} {body}: {reply:?}");
            assert_eq!(reply.headers["content-type"], "application/problem+json");
            if let Some(pointer) = pointer
                && !pointer.is_empty()
            {
                assert_eq!(reply.body["errors"][0]["pointer"], pointer, "{reply:?}");
            }
        }
    }
    let malformed = stack
        .send(
            stack
                .http
                .post(format!("{}/v1/orgs", stack.core))
                .bearer_auth(&ada.token)
                .header("content-type", "application/json")
                .body("{\"name\": "),
        )
        .await;
    assert_eq!(malformed.status, 400);
    let not_json = stack
        .send(
            stack
                .http
                .post(format!("{}/v1/orgs", stack.core))
                .bearer_auth(&ada.token)
                .header("content-type", "text/plain")
                .body("name=Acme"),
        )
        .await;
    assert_eq!(not_json.status, 415);
    let bad_id = stack.get(&ada, "/v1/orgs/not-an-id").await;
    assert_eq!(
        (bad_id.status, &bad_id.body["errors"][0]["pointer"]),
        (422, &json!("/path/org"))
    );
    let bad_member = stack
        .call(
            &ada,
            Method::POST,
            &format!("{path}/members"),
            Some(json!({"user_id": "a b", "role": "viewer"})),
        )
        .await;
    assert_eq!(
        (bad_member.status, &bad_member.body["errors"][0]["pointer"]),
        (422, &json!("/user_id"))
    );
    let bad_role = stack
        .call(
            &ada,
            Method::POST,
            &format!("{path}/members"),
            Some(json!({"user_id": "abc", "role": "god"})),
        )
        .await;
    assert_eq!(
        (bad_role.status, &bad_role.body["errors"][0]["pointer"]),
        (422, &json!("/role"))
    );

    // Nothing was written: one organisation, its name and its one member as they were.
    let listed = stack.get(&ada, "/v1/orgs").await;
    assert_eq!(listed.body["items"].as_array().expect("items").len(), 1);
    assert_eq!(listed.body["items"][0]["name"], "Acme");
    let members = stack.get(&ada, &format!("{path}/members")).await;
    assert_eq!(members.body["items"].as_array().expect("members").len(), 1);
}

async fn members_are_managed_by_role_and_the_last_owner_stays(stack: &Stack) {
    let (ada, bob, cat) = (stack.user().await, stack.user().await, stack.user().await);
    let org = stack.org(&ada, "Acme").await;
    let members = format!("/v1/orgs/{org}/members");
    let member = |user: &User| format!("{members}/{}", user.id);

    let added = stack.add(&ada, &org, &bob, "viewer").await;
    assert_eq!(added.status, 201, "{added:?}");
    assert_eq!(added.headers["location"], member(&bob).as_str());
    assert_eq!(stack.add(&ada, &org, &bob, "viewer").await.status, 409);
    // A viewer reads, and may not change anything.
    assert_eq!(stack.get(&bob, &format!("/v1/orgs/{org}")).await.body["role"], "viewer");
    assert_eq!(
        stack.get(&bob, &members).await.body["items"]
            .as_array()
            .expect("items")
            .len(),
        2
    );
    assert_eq!(stack.add(&bob, &org, &cat, "viewer").await.status, 403);

    // An admin manages members but not owners.
    let promoted = stack
        .call(&ada, Method::PATCH, &member(&bob), Some(json!({"role": "admin"})))
        .await;
    assert_eq!((promoted.status, &promoted.body["role"]), (200, &json!("admin")));
    assert_eq!(stack.add(&bob, &org, &cat, "editor").await.status, 201);
    let to_owner = stack
        .call(&bob, Method::PATCH, &member(&cat), Some(json!({"role": "owner"})))
        .await;
    assert_eq!(to_owner.status, 403);
    assert_eq!(stack.call(&bob, Method::DELETE, &member(&ada), None).await.status, 403);
    // Anyone may leave.
    assert_eq!(stack.call(&cat, Method::DELETE, &member(&cat), None).await.status, 204);
    assert_eq!(stack.get(&cat, &format!("/v1/orgs/{org}")).await.status, 404);

    // The last owner can neither leave, be demoted, nor be removed.
    let last = [
        stack.call(&ada, Method::DELETE, &member(&ada), None).await,
        stack
            .call(&ada, Method::PATCH, &member(&ada), Some(json!({"role": "admin"})))
            .await,
    ];
    for refused in last {
        assert_eq!(refused.status, 409, "{refused:?}");
        assert!(
            refused.body["detail"]
                .as_str()
                .expect("detail")
                .contains("at least one owner")
        );
    }
    // With a second owner, the first may go.
    let made_owner = stack
        .call(&ada, Method::PATCH, &member(&bob), Some(json!({"role": "owner"})))
        .await;
    assert_eq!(made_owner.status, 200);
    assert_eq!(stack.call(&ada, Method::DELETE, &member(&ada), None).await.status, 204);
    let left = stack.get(&bob, &members).await;
    assert_eq!(
        left.body["items"],
        json!([{"user_id": bob.id, "role": "owner", "added_at": left.body["items"][0]["added_at"]}])
    );
    assert_eq!(stack.call(&bob, Method::DELETE, &member(&bob), None).await.status, 409);
}

async fn two_owners_demoting_each_other_at_once_leave_one_owner(stack: &Stack) {
    let (ada, bob) = (stack.user().await, stack.user().await);
    for round in 0..3 {
        let org = stack.org(&ada, &format!("Race {round}")).await;
        assert_eq!(stack.add(&ada, &org, &bob, "owner").await.status, 201);
        let (of_bob, of_ada) = (
            format!("/v1/orgs/{org}/members/{}", bob.id),
            format!("/v1/orgs/{org}/members/{}", ada.id),
        );
        let viewer = || Some(json!({"role": "viewer"}));
        let (first, second) = tokio::join!(
            stack.call(&ada, Method::PATCH, &of_bob, viewer()),
            stack.call(&bob, Method::PATCH, &of_ada, viewer()),
        );
        let mut statuses = [first.status, second.status];
        statuses.sort_unstable();
        // One demotion wins; the other loses the race (409) or, run second, is refused because
        // its author is no longer an owner (403) or no owner would be left (409).
        assert_eq!(statuses[0], 200, "round {round}: {first:?} {second:?}");
        assert!(matches!(statuses[1], 403 | 409), "round {round}: {first:?} {second:?}");
        let members = stack.get(&ada, &format!("/v1/orgs/{org}/members")).await;
        let owners = members.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|m| m["role"] == "owner")
            .count();
        assert_eq!(owners, 1, "round {round}: {members:?}");
    }
}

async fn deleting_an_organisation_destroys_its_keys_then_its_items(stack: &Stack) {
    let (ada, bob) = (stack.user().await, stack.user().await);
    let org = stack.org(&ada, "Doomed").await;
    assert_eq!(stack.add(&ada, &org, &bob, "admin").await.status, 201);
    let keys = stack
        .store
        .query(Table::Core, &format!("tenantkey#{org}"), "", 10)
        .await
        .expect("keys");
    assert_eq!(keys.len(), 1, "the organisation has its data key");
    // Only an owner deletes.
    assert_eq!(
        stack
            .call(&bob, Method::DELETE, &format!("/v1/orgs/{org}"), None)
            .await
            .status,
        403
    );
    assert_eq!(
        stack
            .call(&ada, Method::DELETE, &format!("/v1/orgs/{org}"), None)
            .await
            .status,
        204
    );
    for partition in [format!("tenantkey#{org}"), format!("org#{org}")] {
        let left = stack.store.query(Table::Core, &partition, "", 10).await.expect("query");
        assert!(left.is_empty(), "{partition}: {left:?}");
    }
    for user in [&ada, &bob] {
        assert_eq!(stack.get(user, &format!("/v1/orgs/{org}")).await.status, 404);
        assert_eq!(stack.get(user, "/v1/orgs").await.body["items"], json!([]));
    }
}

/// A deletion that stopped after marking the organisation (simulated by writing the mark): it
/// answers 404, takes no member, is off every list, and its owner's DELETE finishes the job.
async fn an_organisation_being_deleted_answers_404_and_its_owner_can_finish(stack: &Stack) {
    let (ada, bob) = (stack.user().await, stack.user().await);
    let org = stack.org(&ada, "Half gone").await;
    let key = rampart_core::records::org_key(&org);
    let mut item = stack.store.get(Table::Core, &key).await.expect("get").expect("org");
    item.body["deleting"] = json!(true);
    stack.store.put(Table::Core, &item).await.expect("mark");
    assert_eq!(stack.get(&ada, &format!("/v1/orgs/{org}")).await.status, 404);
    assert_eq!(stack.add(&ada, &org, &bob, "viewer").await.status, 404);
    assert_eq!(stack.get(&ada, "/v1/orgs").await.body["items"], json!([]));
    assert_eq!(
        stack
            .call(&ada, Method::DELETE, &format!("/v1/orgs/{org}"), None)
            .await
            .status,
        204
    );
    for partition in [format!("tenantkey#{org}"), format!("org#{org}")] {
        let left = stack.store.query(Table::Core, &partition, "", 10).await.expect("query");
        assert!(left.is_empty(), "{partition}: {left:?}");
    }
}

async fn core_checks_every_token_itself(stack: &Stack) {
    let ada = stack.user().await;
    let none = stack.send(stack.http.get(format!("{}/v1/orgs", stack.core))).await;
    assert_eq!(none.status, 401);
    assert_eq!(none.headers["www-authenticate"], r#"Bearer realm="rampart""#);
    let mut forged = ada.clone();
    forged.token.pop();
    forged.token.push(if ada.token.ends_with('A') { 'B' } else { 'A' });
    let refused = stack.get(&forged, "/v1/orgs").await;
    assert_eq!(refused.status, 401);
    assert_eq!(
        refused.headers["www-authenticate"],
        r#"Bearer realm="rampart", error="invalid_token""#
    );
    assert_eq!(stack.get(&ada, "/v1/orgs").await.status, 200);
    // Signing out revokes the session: core refuses the still-unexpired token on its own,
    // within the revocation feed's bound, with no proxy in front.
    let logout = stack
        .send(
            stack
                .http
                .post(format!("{}/v1/auth/logout", stack.auth))
                .bearer_auth(&ada.token),
        )
        .await;
    assert_eq!(logout.status, 204, "{logout:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while stack.get(&ada, "/v1/orgs").await.status != 401 {
        assert!(
            Instant::now() < deadline,
            "core still accepts a revoked session's token"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

on_both_stacks!(
    every_list_pages_with_cursors_bound_to_it,
    every_write_is_audited_allowed_or_refused
);

/// Reads `path` page by page with `limit`, returning every item and the cursors seen.
async fn all_pages(stack: &Stack, user: &User, path: &str, limit: usize) -> (Vec<serde_json::Value>, Vec<String>) {
    let (mut items, mut cursors) = (Vec::new(), Vec::new());
    let mut url = format!("{path}?limit={limit}");
    loop {
        let page = stack.get(user, &url).await;
        assert_eq!(page.status, 200, "{url}: {page:?}");
        let got = page.body["items"].as_array().expect("items");
        assert!(got.len() <= limit);
        items.extend(got.iter().cloned());
        let Some(cursor) = page.body["next_cursor"].as_str() else {
            assert!(page.body["next_cursor"].is_null());
            return (items, cursors);
        };
        cursors.push(cursor.to_owned());
        url = format!("{path}?limit={limit}&cursor={cursor}");
    }
}

/// The field a 400 names.
fn refused_field(reply: &crate::stack::Reply) -> &str {
    assert_eq!(reply.status, 400, "{reply:?}");
    assert_eq!(reply.headers["content-type"], "application/problem+json");
    reply.body["errors"][0]["pointer"].as_str().expect("pointer")
}

async fn every_list_pages_with_cursors_bound_to_it(stack: &Stack) {
    let (ada, eve) = (stack.user().await, stack.user().await);
    let (acme, globex) = (stack.org(&ada, "Acme").await, stack.org(&ada, "Globex").await);
    let evil = stack.org(&eve, "Evil").await;
    for n in 0..7 {
        let body = json!({"user_id": format!("made-up-{n}"), "role": "viewer"});
        let added = stack
            .call(&ada, Method::POST, &format!("/v1/orgs/{acme}/members"), Some(body))
            .await;
        assert_eq!(added.status, 201, "{added:?}");
    }
    let members = format!("/v1/orgs/{acme}/members");
    let (items, cursors) = all_pages(stack, &ada, &members, 3).await;
    let mut ids: Vec<_> = items.iter().map(|m| m["user_id"].as_str().expect("id")).collect();
    assert_eq!(ids.len(), 8, "every member once");
    assert_eq!(cursors.len(), 2);
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 8);
    assert!(ids.contains(&ada.id.as_str()));

    let (orgs, _) = all_pages(stack, &ada, "/v1/orgs", 1).await;
    let mut names: Vec<_> = orgs.iter().map(|o| o["name"].as_str().expect("name")).collect();
    names.sort_unstable();
    assert_eq!(names, ["Acme", "Globex"]);

    let project = stack
        .call(
            &ada,
            Method::POST,
            &format!("/v1/orgs/{acme}/projects"),
            Some(json!({"name": "P"})),
        )
        .await;
    let project = project.body["id"].as_str().expect("project").to_owned();
    let documents = format!("/v1/orgs/{acme}/projects/{project}/documents");
    for n in 0..3 {
        let body = json!({"title": format!("Doc {n}"), "body": "text"});
        let created = stack.call(&ada, Method::POST, &documents, Some(body)).await;
        assert_eq!(created.status, 201, "{created:?}");
    }
    let (docs, _) = all_pages(stack, &ada, &documents, 2).await;
    assert_eq!(docs.len(), 3);

    // A cursor works only in the list that gave it out: not tampered with, not in another kind
    // of list, not for another organisation, not for another user's list.
    let cursor = &cursors[0];
    let mut tampered = cursor.clone().into_bytes();
    tampered[0] = if tampered[0] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    for path in [
        format!("{members}?cursor={tampered}"),
        format!("/v1/orgs/{globex}/members?cursor={cursor}"),
        format!("/v1/orgs/{acme}/projects?cursor={cursor}"),
        format!("{documents}?cursor={cursor}"),
        format!("/v1/orgs/{acme}/audit?cursor={cursor}"),
        format!("/v1/orgs?cursor={cursor}"),
    ] {
        let refused = stack.get(&ada, &path).await;
        assert_eq!(refused_field(&refused), "/query/cursor", "{path}");
    }
    let (_, ada_orgs) = all_pages(stack, &ada, "/v1/orgs", 1).await;
    let stolen = stack.get(&eve, &format!("/v1/orgs?cursor={}", ada_orgs[0])).await;
    assert_eq!(refused_field(&stolen), "/query/cursor");
    let moved = stack
        .get(&eve, &format!("/v1/orgs/{evil}/members?cursor={cursor}"))
        .await;
    assert_eq!(refused_field(&moved), "/query/cursor");
    // A list of another tenant stays 404 whatever the query says.
    let hidden = stack.get(&eve, &format!("{members}?cursor={cursor}")).await;
    assert_eq!(hidden.status, 404);

    for (query, field) in [
        ("limit=0", "/query/limit"),
        ("limit=101", "/query/limit"),
        ("limit=ten", "/query"),
        ("sort=name", "/query"),
    ] {
        let refused = stack.get(&ada, &format!("{members}?{query}")).await;
        assert_eq!(refused_field(&refused), field, "{query}");
    }
}

async fn every_write_is_audited_allowed_or_refused(stack: &Stack) {
    let (ada, bob, eve) = (stack.user().await, stack.user().await, stack.user().await);
    let org = stack.org(&ada, "Acme").await;
    let path = format!("/v1/orgs/{org}");
    // A rename with a request id and a trace of the caller's own.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let renamed = stack
        .send(
            stack
                .http
                .patch(format!("{}{path}", stack.core))
                .bearer_auth(&ada.token)
                .header("content-type", "application/merge-patch+json")
                .header("x-request-id", "rename-1")
                .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
                .body(json!({"name": "Acme Ltd"}).to_string()),
        )
        .await;
    assert_eq!(renamed.status, 200, "{renamed:?}");
    assert_eq!(stack.add(&ada, &org, &bob, "viewer").await.status, 201);
    // Refused: a viewer renaming (403), a stranger adding (404), a bad name (422), the last
    // owner leaving (409).
    let refusals = [
        (&bob, Method::PATCH, path.clone(), json!({"name": "Mine"}), 403),
        (
            &eve,
            Method::POST,
            format!("{path}/members"),
            json!({"user_id": eve.id, "role": "owner"}),
            404,
        ),
        (&ada, Method::PATCH, path.clone(), json!({"name": ""}), 422),
    ];
    for (user, method, target, body, status) in &refusals {
        let reply = stack.call(user, method.clone(), target, Some(body.clone())).await;
        assert_eq!(reply.status, *status, "{reply:?}");
    }
    let leave = stack
        .call(&ada, Method::DELETE, &format!("{path}/members/{}", ada.id), None)
        .await;
    assert_eq!(leave.status, 409);
    // Reads are not writes: not audited.
    assert_eq!(stack.get(&bob, &path).await.status, 200);

    let (log, _) = all_pages(stack, &ada, &format!("{path}/audit"), 2).await;
    let summary: Vec<_> = log
        .iter()
        .map(|r| {
            (
                r["actor"].as_str().expect("actor").to_owned(),
                r["action"].as_str().expect("action").to_owned(),
                r["outcome"].as_str().expect("outcome").to_owned(),
                r["status"].as_u64(),
            )
        })
        .collect();
    let expected = [
        (&ada, "DELETE /v1/orgs/{org}/members/{user}", "refused", Some(409)),
        (&ada, "PATCH /v1/orgs/{org}", "refused", Some(422)),
        (&eve, "POST /v1/orgs/{org}/members", "denied", Some(404)),
        (&bob, "PATCH /v1/orgs/{org}", "denied", Some(403)),
        (&ada, "POST /v1/orgs/{org}/members", "allowed", None),
        (&ada, "PATCH /v1/orgs/{org}", "allowed", None),
        (&ada, "POST /v1/orgs", "allowed", None),
    ]
    .map(|(user, action, outcome, status)| (user.id.clone(), action.to_owned(), outcome.to_owned(), status));
    assert_eq!(summary, expected, "newest first, every write once");
    let rename = &log[5];
    assert_eq!(rename["target"], path.as_str());
    assert_eq!(rename["request_id"], "rename-1");
    assert_eq!(rename["trace_id"], trace);
    assert_eq!(log[4]["target"], format!("{path}/members/{}", bob.id).as_str());
    assert!(
        log.iter()
            .all(|r| r["request_id"].as_str().is_some_and(|id| !id.is_empty()))
    );

    // Owners and admins read it; a viewer may not, a stranger does not see it.
    assert_eq!(stack.get(&bob, &format!("{path}/audit")).await.status, 403);
    assert_eq!(stack.get(&eve, &format!("{path}/audit")).await.status, 404);
    // Nothing of another organisation, nor a record for a write to one that does not exist.
    let other = stack.org(&eve, "Evil").await;
    let ghost = format!("/v1/orgs/{}", uuid_like());
    let missing = stack
        .call(&eve, Method::PATCH, &ghost, Some(json!({"name": "x"})))
        .await;
    assert_eq!(missing.status, 404);
    let (theirs, _) = all_pages(stack, &eve, &format!("/v1/orgs/{other}/audit"), 50).await;
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    let ghost_log = stack
        .store
        .query(Table::Core, &format!("audit#{}", &ghost[9..]), "", 10)
        .await;
    assert!(ghost_log.expect("query").is_empty());
}

on_both_stacks!(posts_with_one_idempotency_key_write_once);

async fn posts_with_one_idempotency_key_write_once(stack: &Stack) {
    let (ada, eve) = (stack.user().await, stack.user().await);
    let post = |user: &User, path: &str, key: &str, body: serde_json::Value| {
        stack
            .http
            .post(format!("{}{path}", stack.core))
            .bearer_auth(&user.token)
            .header("idempotency-key", key)
            .header("content-type", "application/json")
            .body(body.to_string())
    };
    let first = stack
        .send(post(&ada, "/v1/orgs", "org-1", json!({"name": "Acme"})))
        .await;
    assert_eq!(first.status, 201, "{first:?}");
    assert!(first.headers.get("idempotent-replayed").is_none());
    let again = stack
        .send(post(&ada, "/v1/orgs", "org-1", json!({"name": "Acme"})))
        .await;
    assert_eq!(again.status, 201, "{again:?}");
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(
        (&again.body, &again.headers["location"]),
        (&first.body, &first.headers["location"])
    );
    let listed = stack.get(&ada, "/v1/orgs").await;
    assert_eq!(
        listed.body["items"].as_array().map(Vec::len),
        Some(1),
        "one organisation"
    );

    // The same key for another request is refused; another user's same key is theirs alone.
    let other = stack
        .send(post(&ada, "/v1/orgs", "org-1", json!({"name": "Globex"})))
        .await;
    assert_eq!(other.status, 422, "{other:?}");
    assert_eq!(other.body["errors"][0]["pointer"], "/header/idempotency-key");
    let theirs = stack
        .send(post(&eve, "/v1/orgs", "org-1", json!({"name": "Acme"})))
        .await;
    assert_eq!(theirs.status, 201);
    assert!(theirs.headers.get("idempotent-replayed").is_none());
    assert_ne!(theirs.body["id"], first.body["id"]);
    let bad = stack
        .send(post(&ada, "/v1/orgs", "has space", json!({"name": "Acme"})))
        .await;
    assert_eq!(bad.status, 400, "{bad:?}");

    // A refused request frees its key: the corrected retry goes through.
    let org = first.body["id"].as_str().expect("id").to_owned();
    let members = format!("/v1/orgs/{org}/members");
    let wrong = stack
        .send(post(&ada, &members, "add-1", json!({"user_id": "bob", "role": "king"})))
        .await;
    assert_eq!(wrong.status, 422);
    let right = stack
        .send(post(
            &ada,
            &members,
            "add-1",
            json!({"user_id": "bob", "role": "viewer"}),
        ))
        .await;
    assert_eq!(right.status, 201, "{right:?}");

    // 200 at once with one key: one write, every other answer a replay of it (201 or a 303 to it)
    // or a 409.
    let project = stack
        .send(post(
            &ada,
            &format!("/v1/orgs/{org}/projects"),
            "p-1",
            json!({"name": "P"}),
        ))
        .await;
    let documents = format!(
        "/v1/orgs/{org}/projects/{}/documents",
        project.body["id"].as_str().expect("id")
    );
    let marker = format!("idempotent-marker-{}", rampart_testkit::unique_suffix());
    let body = json!({"title": marker, "body": marker});
    let mut flood = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let request = post(&ada, &documents, "doc-1", body.clone());
        flood.spawn(async move {
            let answer = request.send().await.expect("send");
            let (status, replayed) = (
                answer.status().as_u16(),
                answer.headers().contains_key("idempotent-replayed"),
            );
            // A 303 (the write made, its answer not yet kept) carries its Location and no body.
            let location = answer.headers().get("location").cloned();
            let body = match status {
                303 => json!({"location": location.expect("location").to_str().expect("text")}),
                _ => answer.json::<serde_json::Value>().await.expect("json"),
            };
            (status, replayed, body)
        });
    }
    let answers = flood.join_all().await;
    // On moto, 200 requests at once can outlast the SDK's timeouts (the emulator takes one call at
    // a time): those answer 503 and a client retries them. Never on the embedded store.
    let allowed: &[u16] = if stack.aws.is_some() {
        &[201, 303, 409, 503]
    } else {
        &[201, 303, 409]
    };
    assert!(
        answers.iter().all(|(status, ..)| allowed.contains(status)),
        "{answers:?}"
    );
    let created: Vec<_> = answers.iter().filter(|(status, ..)| *status == 201).collect();
    let originals = created.iter().filter(|(_, replayed, _)| !replayed).count();
    assert!(originals <= 1, "{originals} originals");
    // Retried until it answers 201 (or 303, a write whose answer was lost), as a client would: a
    // 503 that wrote nothing holds its key until the lease ends, 15 s. The one document, written
    // once.
    let mut settled = stack.send(post(&ada, &documents, "doc-1", body.clone())).await;
    for _ in 0..80 {
        if [201, 303].contains(&settled.status) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        settled = stack.send(post(&ada, &documents, "doc-1", body.clone())).await;
    }
    let id = match settled.status {
        201 => settled.body["id"].as_str().expect("id").to_owned(),
        303 => settled.headers["location"]
            .to_str()
            .expect("location")
            .rsplit('/')
            .next()
            .expect("id")
            .to_owned(),
        _ => panic!("{settled:?}"),
    };
    assert!(
        created
            .iter()
            .all(|(_, _, doc)| doc["id"] == id.as_str() && doc["title"] == marker.as_str())
    );
    let sent_on = format!("{documents}/{id}");
    assert!(
        answers
            .iter()
            .filter(|(status, ..)| *status == 303)
            .all(|(_, replayed, to)| *replayed && to["location"] == sent_on.as_str()),
        "{answers:?}"
    );
    let listed = stack.get(&ada, &documents).await;
    assert_eq!(
        listed.body["items"].as_array().map(Vec::len),
        Some(1),
        "exactly one write"
    );
    assert_eq!(listed.body["items"][0]["id"], id.as_str());
    let replay = stack.send(post(&ada, &documents, "doc-1", body.clone())).await;
    assert_eq!(
        (replay.status, &replay.headers["idempotent-replayed"]),
        (settled.status, &http::HeaderValue::from_static("true"))
    );
    if replay.status == 201 {
        assert_eq!(replay.body["body"], marker.as_str());
    }
    // A member removed since gets no replay of what they created there.
    let bob = stack.user().await;
    assert_eq!(stack.add(&ada, &org, &bob, "editor").await.status, 201);
    let bobs = stack
        .send(post(&bob, &documents, "bob-1", json!({"title": "Bob's", "body": "b"})))
        .await;
    assert_eq!(bobs.status, 201, "{bobs:?}");
    let removed = stack
        .call(
            &ada,
            Method::DELETE,
            &format!("/v1/orgs/{org}/members/{}", bob.id),
            None,
        )
        .await;
    assert_eq!(removed.status, 204);
    let replay = stack
        .send(post(&bob, &documents, "bob-1", json!({"title": "Bob's", "body": "b"})))
        .await;
    assert_eq!(replay.status, 404, "{replay:?}");

    // A key whose first request is still running: 409, to come back shortly.
    let (path, body) = ("/v1/orgs", json!({"name": "Slow"}));
    let sha256 = |bytes: &[u8]| -> String {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
        digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    };
    let mut request = (path.len() as u64).to_be_bytes().to_vec();
    request.extend_from_slice(path.as_bytes());
    request.extend_from_slice(body.to_string().as_bytes());
    let lease = rampart_store::Item::new(
        rampart_store::Key::new(format!("idem#{}", ada.id), sha256(b"held")),
        json!({"request": sha256(&request), "answer": null}),
    );
    stack.store.put(Table::Core, &lease).await.expect("a lease held");
    let running = stack.send(post(&ada, path, "held", body)).await;
    assert_eq!(running.status, 409, "{running:?}");
    assert!(running.headers.contains_key("retry-after"));

    // The stored answer holds the document sealed, as the document itself is.
    let kept = stack
        .store
        .query(Table::Core, &format!("idem#{}", ada.id), "", 50)
        .await
        .expect("records");
    assert!(!kept.is_empty());
    assert!(kept.iter().all(|item| !item.body.to_string().contains(&marker)));
}

/// Every cell of the permission matrix, over HTTP: a member of each role tries each action,
/// and is let through exactly where `docs/core.md`'s table (`permissions::allows`) says.
#[tokio::test]
async fn the_permission_matrix_holds_cell_by_cell() {
    let stack = Stack::embedded().await;
    let founder = stack.user().await;
    for role in Role::ALL {
        let actor = stack.user().await;
        let org = stack.org(&founder, &format!("{role:?} matrix")).await;
        let role_name = serde_json::to_value(role).expect("role");
        let role_name = role_name.as_str().expect("role name");
        assert_eq!(stack.add(&founder, &org, &actor, role_name).await.status, 201);
        let path = format!("/v1/orgs/{org}");
        // Deleting last: it ends the organisation.
        let actions = Action::ALL
            .into_iter()
            .filter(|a| *a != Action::DeleteOrg)
            .chain([Action::DeleteOrg]);
        for action in actions {
            let reply = match action {
                Action::ReadOrg => stack.get(&actor, &path).await,
                Action::RenameOrg => {
                    stack
                        .call(&actor, Method::PATCH, &path, Some(json!({"name": "Renamed"})))
                        .await
                }
                Action::ListMembers => stack.get(&actor, &format!("{path}/members")).await,
                Action::ManageMembers => stack.add(&actor, &org, &stack.user().await, "editor").await,
                Action::ManageOwners => stack.add(&actor, &org, &stack.user().await, "owner").await,
                // No audit route yet; the matrix's row is checked by the unit test.
                Action::ReadAudit => continue,
                Action::ReadContent => stack.get(&actor, &format!("{path}/projects")).await,
                Action::ManageProjects => {
                    stack
                        .call(
                            &actor,
                            Method::POST,
                            &format!("{path}/projects"),
                            Some(json!({"name": "P"})),
                        )
                        .await
                }
                Action::WriteContent => {
                    let project = stack
                        .call(
                            &founder,
                            Method::POST,
                            &format!("{path}/projects"),
                            Some(json!({"name": "W"})),
                        )
                        .await;
                    let project = project.body["id"].as_str().expect("project").to_owned();
                    let body = json!({"title": "T", "body": "B"});
                    stack
                        .call(
                            &actor,
                            Method::POST,
                            &format!("{path}/projects/{project}/documents"),
                            Some(body),
                        )
                        .await
                }
                Action::DeleteOrg => stack.call(&actor, Method::DELETE, &path, None).await,
            };
            let expected = if allows(role, action) { "allowed" } else { "refused" };
            let got = match reply.status {
                200 | 201 | 204 => "allowed",
                403 => "refused",
                other => panic!("{role:?} {action:?}: unexpected {other} {reply:?}"),
            };
            assert_eq!(got, expected, "{role:?} {action:?}: {reply:?}");
        }
    }
}

on_both_stacks!(
    documents_are_sealed_at_rest_versioned_and_guarded_by_etags,
    a_document_body_sealed_as_base64_by_an_earlier_release_still_opens,
);

/// Releases before the sealed body moved to the item's blob stored it base64 in the record's
/// `body`: such a document still reads and patches, and its next revision is stored as bytes.
/// A sealed body moved onto another document does not open there.
async fn a_document_body_sealed_as_base64_by_an_earlier_release_still_opens(stack: &Stack) {
    use base64::Engine;
    let ada = stack.user().await;
    let org = stack.org(&ada, "Earlier").await;
    let documents = stack.documents_of_new_project(&ada, &org).await;
    let created = stack
        .call(
            &ada,
            Method::POST,
            &documents,
            Some(json!({"title": "Kept", "body": "written before"})),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let id = created.body["id"].as_str().expect("id").to_owned();
    let path = format!("{documents}/{id}");
    let project = created.body["project_id"].as_str().expect("project").to_owned();
    let key = rampart_store::Key::new(format!("org#{org}"), format!("doc#{project}#{id}"));
    let mut item = stack.store.get(Table::Core, &key).await.expect("get").expect("doc");
    assert!(
        item.body.get("body").is_none(),
        "the body is not in the record: {}",
        item.body
    );
    let sealed = item.blob.take().expect("the sealed body is the blob");
    item.body["body"] = json!(base64::engine::general_purpose::STANDARD.encode(&sealed));
    stack
        .store
        .put(Table::Core, &item)
        .await
        .expect("write the earlier form");

    let read = stack.get(&ada, &path).await;
    assert_eq!(
        (read.status, &read.body["body"]),
        (200, &json!("written before")),
        "{read:?}"
    );
    let etag = read.headers["etag"].to_str().expect("etag").to_owned();
    let patched = stack
        .send(
            stack
                .http
                .patch(format!("{}{path}", stack.core))
                .bearer_auth(&ada.token)
                .header("if-match", &etag)
                .header("content-type", "application/merge-patch+json")
                .body(json!({"tags": ["kept"]}).to_string()),
        )
        .await;
    assert_eq!(
        (patched.status, &patched.body["body"], &patched.body["title"]),
        (200, &json!("written before"), &json!("Kept")),
        "{patched:?}"
    );
    let item = stack.store.get(Table::Core, &key).await.expect("get").expect("doc");
    assert!(item.body.get("body").is_none() && item.blob.is_some(), "{item:?}");
    assert_eq!(stack.get(&ada, &path).await.body["body"], "written before");

    // A record with a base64 body beside its blob is refused rather than either one read.
    let mut both = stack.store.get(Table::Core, &key).await.expect("get").expect("doc");
    both.body["body"] = json!(base64::engine::general_purpose::STANDARD.encode(&sealed));
    stack.store.put(Table::Core, &both).await.expect("tamper");
    let refused = stack.get(&ada, &path).await;
    assert_eq!(refused.status, 500, "{refused:?}");
    assert!(!refused.body.to_string().contains("written before"), "{refused:?}");

    // The body of another document, copied over this one's, does not open.
    let other = stack
        .call(
            &ada,
            Method::POST,
            &documents,
            Some(json!({"title": "Other", "body": "another document's body"})),
        )
        .await;
    let other_key = rampart_store::Key::new(
        format!("org#{org}"),
        format!("doc#{project}#{}", other.body["id"].as_str().expect("id")),
    );
    let other_item = stack
        .store
        .get(Table::Core, &other_key)
        .await
        .expect("get")
        .expect("doc");
    let mut item = stack.store.get(Table::Core, &key).await.expect("get").expect("doc");
    item.body.as_object_mut().expect("record").remove("body");
    item.blob = other_item.blob;
    stack.store.put(Table::Core, &item).await.expect("tamper");
    let moved = stack.get(&ada, &path).await;
    assert_eq!(moved.status, 500, "{moved:?}");
    assert!(!moved.body.to_string().contains("another document"), "{moved:?}");
}

async fn documents_are_sealed_at_rest_versioned_and_guarded_by_etags(stack: &Stack) {
    let ada = stack.user().await;
    let org = stack.org(&ada, "Docs").await;
    let project = stack
        .call(
            &ada,
            Method::POST,
            &format!("/v1/orgs/{org}/projects"),
            Some(json!({"name": "Plans"})),
        )
        .await;
    assert_eq!(project.status, 201, "{project:?}");
    let project = project.body["id"].as_str().expect("id").to_owned();
    let renamed = stack
        .call(
            &ada,
            Method::PATCH,
            &format!("/v1/orgs/{org}/projects/{project}"),
            Some(json!({"name": "Plans 2027"})),
        )
        .await;
    assert_eq!((renamed.status, &renamed.body["name"]), (200, &json!("Plans 2027")));
    let read = stack.get(&ada, &format!("/v1/orgs/{org}/projects/{project}")).await;
    assert_eq!(read.body["name"], "Plans 2027");
    let documents = format!("/v1/orgs/{org}/projects/{project}/documents");
    let marker = format!("marker-{}", rampart_testkit::unique_suffix());
    let created = stack
        .call(
            &ada,
            Method::POST,
            &documents,
            Some(json!({"title": format!("Title {marker}"), "body": format!("Body {marker}"), "tags": ["q1"]})),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let id = created.body["id"].as_str().expect("id").to_owned();
    let path = format!("{documents}/{id}");
    assert_eq!(created.headers["location"], path.as_str());
    let first = created.headers["etag"].to_str().expect("etag").to_owned();

    // Read back whole, and 304 for the ETag held.
    let read = stack.get(&ada, &path).await;
    assert_eq!(
        (read.status, &read.body["body"]),
        (200, &json!(format!("Body {marker}")))
    );
    assert_eq!(read.headers["etag"], first.as_str());
    let unchanged = stack
        .send(
            stack
                .http
                .get(format!("{}{path}", stack.core))
                .bearer_auth(&ada.token)
                .header("if-none-match", &first),
        )
        .await;
    assert_eq!(unchanged.status, 304);
    let listed = stack.get(&ada, &documents).await;
    assert_eq!(listed.body["items"][0]["title"], format!("Title {marker}"));

    // Plaintext is nowhere at rest: not in any stored item, nor in the SQLite files.
    let items = stack
        .store
        .query(Table::Core, &format!("org#{org}"), "", 100)
        .await
        .expect("items");
    assert!(items.iter().any(|item| item.key.sk.starts_with("doc#")));
    assert!(items.iter().all(|item| !item.body.to_string().contains(&marker)));
    assert!(items.iter().all(|item| {
        let blob = item.blob.as_deref().unwrap_or_default();
        !blob.windows(marker.len()).any(|w| w == marker.as_bytes())
    }));
    for file in ["store.sqlite", "store.sqlite-wal"] {
        if let Ok(bytes) = std::fs::read(stack.dir.path().join(file)) {
            assert!(!bytes.windows(marker.len()).any(|w| w == marker.as_bytes()), "{file}");
        }
    }

    // Changes need the ETag they were made from: 428 without, 412 for an old one.
    let put = |etag: Option<String>, title: &str| {
        let mut request = stack
            .http
            .put(format!("{}{path}", stack.core))
            .bearer_auth(&ada.token)
            .json(&json!({"title": title, "body": "new body"}));
        if let Some(etag) = etag {
            request = request.header("if-match", etag);
        }
        stack.send(request)
    };
    assert_eq!(put(None, "x").await.status, 428);
    assert_eq!(put(Some("\"999\"".into()), "x").await.status, 412);
    // Two writers holding the same ETag: one wins, the other gets 412.
    let (one, two) = tokio::join!(put(Some(first.clone()), "one"), put(Some(first.clone()), "two"));
    let mut statuses = [one.status, two.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 412], "{one:?} {two:?}");
    let winner = if one.status == 200 { one } else { two };
    assert_eq!(winner.body["revision"], 2);
    let second = winner.headers["etag"].to_str().expect("etag").to_owned();
    assert_ne!(second, first);

    // A merge patch changes what it names; a required field cannot be removed.
    let patch = |body: serde_json::Value| {
        stack.send(
            stack
                .http
                .patch(format!("{}{path}", stack.core))
                .bearer_auth(&ada.token)
                .header("if-match", &second)
                .header("content-type", "application/merge-patch+json")
                .body(body.to_string()),
        )
    };
    let removed = patch(json!({"title": null})).await;
    assert_eq!(
        (removed.status, &removed.body["errors"][0]["pointer"]),
        (422, &json!("/title"))
    );
    let tagged = patch(json!({"tags": ["q2", "plan"], "status": "published"})).await;
    assert_eq!(tagged.status, 200, "{tagged:?}");
    assert_eq!(
        (&tagged.body["body"], &tagged.body["status"]),
        (&json!("new body"), &json!("published"))
    );
    assert_eq!(tagged.body["title"], winner.body["title"]);

    // `*` matches whatever version is current, and so does a list naming it.
    let star = put(Some("*".into()), "any").await;
    assert_eq!(star.status, 200, "{star:?}");
    let current = star.headers["etag"].to_str().expect("etag").to_owned();
    let listed = put(Some(format!("\"1\", {current}")), "listed").await;
    assert_eq!(listed.status, 200, "{listed:?}");
    assert_eq!(put(Some(format!("\"1\", {current}")), "stale").await.status, 412);

    // Limits: 256 KiB of text, named; a request past 1 MiB is refused before it is read.
    let third = listed.headers["etag"].to_str().expect("etag").to_owned();
    let too_long = "x".repeat(256 * 1024 + 1);
    let refused = stack
        .call(
            &ada,
            Method::POST,
            &documents,
            Some(json!({"title": "Big", "body": too_long})),
        )
        .await;
    assert_eq!(
        (refused.status, &refused.body["errors"][0]["pointer"]),
        (422, &json!("/body"))
    );
    let huge = "x".repeat(1024 * 1024 + 1);
    let oversized = stack
        .call(
            &ada,
            Method::POST,
            &documents,
            Some(json!({"title": "Huge", "body": huge})),
        )
        .await;
    assert_eq!(oversized.status, 413);

    // A sealed title moved onto another document does not open there.
    let other = stack
        .call(
            &ada,
            Method::POST,
            &documents,
            Some(json!({"title": "Other", "body": "other"})),
        )
        .await;
    let other_id = other.body["id"].as_str().expect("id").to_owned();
    let doc_key = |doc: &str| rampart_store::Key::new(format!("org#{org}"), format!("doc#{project}#{doc}"));
    let source = stack
        .store
        .get(Table::Core, &doc_key(&id))
        .await
        .expect("get")
        .expect("doc");
    let mut target = stack
        .store
        .get(Table::Core, &doc_key(&other_id))
        .await
        .expect("get")
        .expect("doc");
    target.body["title"] = source.body["title"].clone();
    stack.store.put(Table::Core, &target).await.expect("tamper");
    let moved = stack.get(&ada, &format!("{documents}/{other_id}")).await;
    assert_eq!(moved.status, 500, "{moved:?}");
    assert!(!moved.body.to_string().contains(&marker));

    // Deleting needs the ETag too; then the document is gone.
    let delete = stack
        .send(
            stack
                .http
                .delete(format!("{}{path}", stack.core))
                .bearer_auth(&ada.token)
                .header("if-match", &third),
        )
        .await;
    assert_eq!(delete.status, 204, "{delete:?}");
    assert_eq!(stack.get(&ada, &path).await.status, 404);
}
