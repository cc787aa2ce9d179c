//! Faults of the AWS side, on the emulator: core answers 503 problem+json (never a 500, never a
//! hang), leaves nothing half written, and recovers by itself when the fault ends.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use http::Method;
use rampart_testkit::Moto;
use serde_json::json;

use crate::stack::{Reply, Stack, User};

/// Longest a request may take, emulator or not: the SDK gives up within 8 seconds, the edge
/// answers at 10. Anything longer is a hang.
const NOT_A_HANG: Duration = Duration::from_secs(11);

/// A 503 as the standards ask: problem+json, with Retry-After, and nothing internal in it.
fn assert_unavailable(reply: &Reply) {
    assert_eq!(reply.status, 503, "{reply:?}");
    assert_eq!(reply.headers["content-type"], "application/problem+json");
    assert!(reply.headers.contains_key("retry-after"), "{reply:?}");
    let text = reply.body.to_string();
    for internal in ["dynamodb", "DynamoDB", "kms", "KMS", "127.0.0.1", "dispatch"] {
        assert!(!text.contains(internal), "{internal} leaked: {text}");
    }
}

/// Every item of the stack's core table, by partition, read past core.
async fn table(stack: &Stack) -> BTreeMap<String, Vec<serde_json::Value>> {
    let client = aws_sdk_dynamodb::Client::new(stack.aws.as_ref().expect("the AWS stack"));
    let mut partitions: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(format!("{}-core", stack.prefix))
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        for item in page.items() {
            let text = |name: &str| match item.get(name) {
                Some(AttributeValue::S(value)) => value.clone(),
                _ => String::new(),
            };
            let body: serde_json::Value = serde_json::from_str(&text("body")).unwrap_or_default();
            partitions
                .entry(text("pk"))
                .or_default()
                .push(json!({"sk": text("sk"), "body": body}));
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            return partitions;
        }
    }
}

/// Nothing half written: every organisation has its data key and its owners' memberships, its
/// owner count matches them, every membership has its organisation, and every document has the audit record
/// of its creation and every recorded creation its document.
async fn assert_whole(stack: &Stack) {
    let partitions = table(stack).await;
    let mut orgs = 0;
    for (pk, items) in &partitions {
        let Some(org) = pk.strip_prefix("org#") else { continue };
        let find = |prefix: &'static str| {
            items
                .iter()
                .filter(move |i| i["sk"].as_str().is_some_and(|sk| sk.starts_with(prefix)))
        };
        let profile = find("profile").next();
        let members: Vec<_> = find("member#").collect();
        let profile = profile.unwrap_or_else(|| panic!("memberships of {org} without it: {members:?}"));
        orgs += 1;
        assert!(
            partitions.contains_key(&format!("tenantkey#{org}")),
            "{org} has lost its data key"
        );
        let owners = members.iter().filter(|m| m["body"]["role"] == "owner").count();
        assert!(owners >= 1, "{org} has no owner");
        assert_eq!(profile["body"]["owners"], json!(owners), "{org}'s owner count");
        let audited: BTreeSet<String> = partitions
            .get(&format!("audit#{org}"))
            .into_iter()
            .flatten()
            .filter(|r| {
                r["body"]["outcome"] == "allowed"
                    && r["body"]["action"] == "POST /v1/orgs/{org}/projects/{project}/documents"
            })
            .map(|r| {
                r["body"]["target"]
                    .as_str()
                    .expect("target")
                    .rsplit('/')
                    .next()
                    .expect("id")
                    .to_owned()
            })
            .collect();
        let documents: BTreeSet<String> = find("doc#")
            .map(|d| d["body"]["id"].as_str().expect("id").to_owned())
            .collect();
        assert_eq!(documents, audited, "{org}: documents and their audit records");
    }
    assert!(orgs > 0);
}

async fn create_document(stack: &Stack, user: &User, documents: &str, n: usize) -> Reply {
    let body = json!({"title": format!("Doc {n}"), "body": "text"});
    stack.call(user, Method::POST, documents, Some(body)).await
}

#[tokio::test]
async fn the_emulator_stopped_mid_run_gives_503s_then_core_recovers_without_a_restart() {
    let moto = Moto::start().expect("a moto of this test's own");
    let stack = Stack::aws_on(rampart_testkit::aws_at(moto.endpoint().to_owned()).await, |_| {}).await;
    let ada = stack.user().await;
    let org = stack.org(&ada, "Acme").await;
    let documents = stack.documents_of_new_project(&ada, &org).await;

    // Three writers, each creating documents and organisations one after another, while the
    // emulator stops for ten seconds in the middle of their run: longer than the SDK's retries
    // bridge (a five-second stop only slows the writes down).
    let stopped = Instant::now() + Duration::from_secs(1);
    let writer = |w: usize| {
        let (stack, ada, documents) = (&stack, &ada, &documents);
        async move {
            let mut answers = Vec::new();
            let mut n = 0;
            while Instant::now() < stopped + Duration::from_secs(12) {
                let started = Instant::now();
                let reply = if n % 3 == 2 {
                    stack
                        .call(
                            ada,
                            Method::POST,
                            "/v1/orgs",
                            Some(json!({"name": format!("Org {w}-{n}")})),
                        )
                        .await
                } else {
                    create_document(stack, ada, documents, n).await
                };
                answers.push((started, started.elapsed(), reply));
                n += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            answers
        }
    };
    let fault = async {
        tokio::time::sleep_until(stopped.into()).await;
        moto.pause();
        tokio::time::sleep(Duration::from_secs(10)).await;
        moto.resume();
    };
    let (_, a, b, c) = tokio::join!(fault, writer(0), writer(1), writer(2));
    let answers: Vec<_> = [a, b, c].into_iter().flatten().collect();
    let mut unavailable = 0;
    for (_, took, reply) in &answers {
        assert!(*took < NOT_A_HANG, "a request hung for {took:?}");
        match reply.status {
            201 => {}
            503 => {
                assert_unavailable(reply);
                unavailable += 1;
            }
            _ => panic!("neither done nor 503: {reply:?}"),
        }
    }
    assert!(
        unavailable >= 3,
        "the stop was felt by every writer: {unavailable} 503s"
    );

    // Back by itself: writes and reads go through on the same core.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut n = 1000;
    loop {
        let reply = create_document(&stack, &ada, &documents, n).await;
        if reply.status == 201 {
            break;
        }
        assert!(Instant::now() < deadline, "core did not recover: {reply:?}");
        n += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for n in 0..5 {
        assert_eq!(create_document(&stack, &ada, &documents, 2000 + n).await.status, 201);
    }
    assert_eq!(stack.get(&ada, &documents).await.status, 200);
    assert_whole(&stack).await;
}

/// KMS refusing its calls (the data key disabled): creating an organisation, reading and
/// writing a document whose key is no longer cached all answer 503 and write nothing; once the
/// key is enabled again, the same core serves them.
#[tokio::test]
async fn kms_refusing_gives_503s_writes_nothing_and_core_recovers() {
    let stack = Stack::aws_on(rampart_testkit::aws().await, |settings| {
        settings.core.data_key_cache_secs = 1;
    })
    .await;
    let kms = aws_sdk_kms::Client::new(stack.aws.as_ref().expect("the AWS stack"));
    let data_key = kms
        .describe_key()
        .key_id(format!("alias/{}-data", stack.prefix))
        .send()
        .await
        .expect("the data key");
    let key_id = data_key.key_metadata().expect("metadata").key_id().to_owned();

    let ada = stack.user().await;
    let org = stack.org(&ada, "Acme").await;
    let documents = stack.documents_of_new_project(&ada, &org).await;
    let created = create_document(&stack, &ada, &documents, 0).await;
    let document = format!("{documents}/{}", created.body["id"].as_str().expect("id"));
    let before = table(&stack).await;

    kms.disable_key().key_id(&key_id).send().await.expect("disable");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let new_org = stack
        .call(&ada, Method::POST, "/v1/orgs", Some(json!({"name": "Globex"})))
        .await;
    assert_unavailable(&new_org);
    assert_unavailable(&stack.get(&ada, &document).await);
    assert_unavailable(&create_document(&stack, &ada, &documents, 1).await);
    let after = table(&stack).await;
    let without_audit = |t: &BTreeMap<String, Vec<serde_json::Value>>| {
        t.iter()
            .filter(|(pk, _)| !pk.starts_with("audit#"))
            .map(|(pk, items)| (pk.clone(), items.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(without_audit(&after), without_audit(&before), "nothing written");

    kms.enable_key().key_id(&key_id).send().await.expect("enable");
    assert_eq!(stack.get(&ada, &document).await.status, 200);
    assert_eq!(create_document(&stack, &ada, &documents, 2).await.status, 201);
    assert_eq!(
        stack
            .call(&ada, Method::POST, "/v1/orgs", Some(json!({"name": "Globex"})))
            .await
            .status,
        201
    );
    assert_whole(&stack).await;
}
