//! The rotation function against Secrets Manager on moto, fed the event JSON Secrets Manager sends
//! (`tests/events/`, one file per step): a whole rotation, each step run twice, a failing test
//! step, a rotation cut off between any two steps and run again, the secrets and versions it
//! refuses, and no value in an error, a `Debug` or a log line.
//!
//! Secrets Manager starts a rotation with RotateSecret, then invokes the function. Given the ARN of
//! a Lambda it does not have, moto's RotateSecret records the rotation as AWS does (an empty
//! version labelled `AWSPENDING`, `RotationEnabled`) and then fails to invoke it: so each test
//! starts a rotation that way and plays Secrets Manager's part itself, invoking the steps.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, OnceLock};

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use aws_sdk_secretsmanager::types::RotationRulesType;
use rampart_rotate_secret_function::{RotationError, Rotator};
use rampart_secrets::{ExposeSecret, SecretSource, SecretsManagerSource};
use serde_json::Value;

const CREATE: &str = include_str!("events/create-secret.json");
const SET: &str = include_str!("events/set-secret.json");
const TEST: &str = include_str!("events/test-secret.json");
const FINISH: &str = include_str!("events/finish-secret.json");
const STEPS: [&str; 4] = [CREATE, SET, TEST, FINISH];

/// The rotation token the event files carry: sensitive, so never logged or shown either.
const ROTATION_TOKEN: &str = "3f1c2b7e-9a4d-4e6b-8c0f-5d2a1e7b9c34";
const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:rampart-rotate-secret";
const CURSOR_KEY: &str = "core/cursor-key";

/// A rotation event from one of the files, for `secret_id` and the version `token`.
fn event(sample: &str, secret_id: &str, token: &str) -> Value {
    serde_json::from_str(&sample.replace("{secret_id}", secret_id).replace("{token}", token)).expect("event JSON")
}

fn new_token() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Each version of a secret: its labels and its value (`None` while empty).
type Snapshot = BTreeMap<String, (BTreeSet<String>, Option<String>)>;

fn labels(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

/// A secret on moto, under a prefix of its own, and the function rotating that prefix's secrets.
struct Rig {
    client: Client,
    source: SecretsManagerSource,
    rotator: Rotator,
    prefix: String,
    /// The ARN of `core/cursor-key`, as Secrets Manager puts it in events.
    arn: String,
}

impl Rig {
    /// `core/cursor-key` with its first value, made as `rampart bootstrap` makes it.
    async fn new() -> Self {
        let aws = rampart_testkit::aws().await;
        rampart_secrets::provision(&aws.config, &aws.prefix)
            .await
            .expect("provision");
        let client = Client::new(&aws.config);
        let name = format!("{}/{CURSOR_KEY}", aws.prefix);
        let described = client
            .describe_secret()
            .secret_id(&name)
            .send()
            .await
            .expect("describe");
        Self {
            source: SecretsManagerSource::new(client.clone(), &aws.prefix),
            rotator: Rotator::new(&aws.config, &aws.prefix),
            arn: described.arn.expect("arn"),
            prefix: aws.prefix,
            client,
        }
    }

    /// Starts a rotation of `secret_id` whose new version is `token`, as RotateSecret does.
    async fn start(&self, secret_id: &str, token: &str) {
        let result = (self.client.rotate_secret())
            .secret_id(secret_id)
            .client_request_token(token)
            .rotation_lambda_arn(FUNCTION_ARN)
            .rotation_rules(RotationRulesType::builder().automatically_after_days(30).build())
            .send()
            .await;
        let error = result.expect_err("moto has no Lambda to invoke");
        assert_eq!(error.code(), Some("ResourceNotFoundException"), "{error:?}");
        let described = self
            .client
            .describe_secret()
            .secret_id(secret_id)
            .send()
            .await
            .expect("describe");
        assert_eq!(described.rotation_enabled, Some(true), "RotateSecret enabled rotation");
        assert_eq!(
            snapshot(&self.client, secret_id).await[token],
            (labels(&["AWSPENDING"]), None),
            "the rotation's empty version"
        );
    }

    async fn run(&self, step: &str, token: &str) -> Result<(), RotationError> {
        self.rotator.handle(event(step, &self.arn, token)).await
    }

    /// Runs `steps` in order, each of which must succeed.
    async fn run_all(&self, steps: &[&str], token: &str) {
        for step in steps {
            self.run(step, token)
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", step_name(step)));
        }
    }

    async fn snapshot(&self) -> Snapshot {
        snapshot(&self.client, &self.arn).await
    }
}

/// The one version labelled `label`.
fn version_with(snapshot: &Snapshot, label: &str) -> String {
    let mut found = snapshot.iter().filter(|(_, (labels, _))| labels.contains(label));
    let (id, _) = found.next().unwrap_or_else(|| panic!("no version is {label}"));
    assert!(found.next().is_none(), "one version at most is {label}");
    id.clone()
}

async fn snapshot(client: &Client, secret_id: &str) -> Snapshot {
    let described = client
        .describe_secret()
        .secret_id(secret_id)
        .send()
        .await
        .expect("describe");
    let mut versions = Snapshot::new();
    for (id, stages) in described.version_ids_to_stages.unwrap_or_default() {
        let value = match client
            .get_secret_value()
            .secret_id(secret_id)
            .version_id(&id)
            .send()
            .await
        {
            Ok(output) => Some(output.secret_string.expect("a string value")),
            Err(error) if error.code() == Some("ResourceNotFoundException") => None,
            Err(error) => panic!("get version {id}: {error:?}"),
        };
        versions.insert(id, (stages.into_iter().collect(), value));
    }
    versions
}

fn step_name(sample: &str) -> String {
    serde_json::from_str::<Value>(sample).expect("event JSON")["Step"]
        .as_str()
        .expect("Step")
        .to_owned()
}

fn is_well_formed_key(value: &str) -> bool {
    value.len() == 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

#[tokio::test]
async fn a_full_rotation_makes_a_new_key_current_and_keeps_the_old_one_previous() {
    let rig = Rig::new().await;
    let old = rig
        .source
        .get(CURSOR_KEY)
        .await
        .expect("first value")
        .expose_secret()
        .to_owned();
    let token = new_token();
    rig.start(&rig.arn, &token).await;

    rig.run(CREATE, &token).await.expect("createSecret");
    let created = rig.snapshot().await;
    let (stages, new) = &created[&token];
    let new = new.clone().expect("createSecret put a value");
    assert_eq!(stages, &labels(&["AWSPENDING"]));
    assert!(
        is_well_formed_key(&new) && new != old,
        "a fresh key like generate() makes"
    );

    rig.run_all(&[SET, TEST], &token).await;
    let during = rig.source.get_with_previous(CURSOR_KEY).await.expect("read");
    assert_eq!(
        during.current.expose_secret(),
        old,
        "nothing is served new before finishSecret"
    );

    rig.run(FINISH, &token).await.expect("finishSecret");
    let after = rig.snapshot().await;
    let first_version = version_with(&after, "AWSPREVIOUS");
    assert_eq!(
        after[&token],
        (labels(&["AWSCURRENT"]), Some(new.clone())),
        "AWSPENDING removed"
    );
    assert_eq!(after[&first_version], (labels(&["AWSPREVIOUS"]), Some(old.clone())));
    assert_eq!(after.len(), 2);

    let read = rig.source.get_with_previous(CURSOR_KEY).await.expect("read");
    assert_eq!(read.current.expose_secret(), new);
    assert_eq!(read.previous.expect("previous").expose_secret(), old);
}

/// Secrets Manager retries a step whose answer it did not get; the plain name stands in for the
/// ARN here, as either can be the event's `SecretId`.
#[tokio::test]
async fn each_step_run_twice_changes_nothing_the_second_time() {
    let rig = Rig::new().await;
    let name = format!("{}/{CURSOR_KEY}", rig.prefix);
    let token = new_token();
    rig.start(&name, &token).await;
    for step in STEPS {
        rig.rotator.handle(event(step, &name, &token)).await.expect("first run");
        let once = rig.snapshot().await;
        rig.rotator
            .handle(event(step, &name, &token))
            .await
            .expect("second run");
        assert_eq!(rig.snapshot().await, once, "{} run again", step_name(step));
    }
    assert_eq!(version_with(&rig.snapshot().await, "AWSCURRENT"), token);
}

#[tokio::test]
async fn a_failing_test_step_never_promotes_the_pending_value_and_a_new_rotation_then_succeeds() {
    let rig = Rig::new().await;
    let old = rig
        .source
        .get(CURSOR_KEY)
        .await
        .expect("first value")
        .expose_secret()
        .to_owned();
    let failed = new_token();
    rig.start(&rig.arn, &failed).await;
    // Something other than createSecret filled the rotation's version with a value that is not a key.
    (rig.client.put_secret_value())
        .secret_id(&rig.arn)
        .client_request_token(&failed)
        .secret_string("not-a-rampart-key")
        .version_stages("AWSPENDING")
        .send()
        .await
        .expect("a malformed pending value");

    rig.run_all(&[CREATE, SET], &failed).await;
    let error = rig.run(TEST, &failed).await.expect_err("testSecret refuses the value");
    assert!(matches!(error, RotationError::Malformed { .. }), "{error}");
    // The version is abandoned: no label is left on it to block the next rotation.
    let after = rig.snapshot().await;
    assert_eq!(after[&failed].0, labels(&[]), "abandoned, never current");
    assert_eq!(rig.source.get(CURSOR_KEY).await.expect("read").expose_secret(), old);
    // Were testSecret or finishSecret invoked again, they refuse it: it is no longer pending.
    for step in [TEST, FINISH] {
        let error = rig.run(step, &failed).await.expect_err("refused");
        assert!(matches!(error, RotationError::NotPending { .. }), "{step}: {error}");
    }

    // The next rotation starts afresh with a new version.
    let next = new_token();
    rig.start(&rig.arn, &next).await;
    rig.run_all(&STEPS, &next).await;
    let after = rig.snapshot().await;
    assert_eq!(after[&failed].0, labels(&[]), "the failed version keeps no label");
    let (stages, made) = &after[&next];
    assert_eq!(stages, &labels(&["AWSCURRENT"]));
    let read = rig.source.get_with_previous(CURSOR_KEY).await.expect("read");
    assert_eq!(Some(read.current.expose_secret()), made.as_deref());
    assert_eq!(read.previous.expect("previous").expose_secret(), old);
}

/// The invocations of one rotation that a fault cut short, then the same rotation again: from
/// the step that never ran, or from the start. Each ends as an uninterrupted rotation would,
/// with the value the first createSecret made.
#[tokio::test]
async fn a_rotation_cut_off_between_any_two_steps_completes_when_run_again() {
    for done in 1..STEPS.len() {
        for resume_from in [done, 0] {
            let rig = Rig::new().await;
            let old = rig
                .source
                .get(CURSOR_KEY)
                .await
                .expect("first value")
                .expose_secret()
                .to_owned();
            let token = new_token();
            rig.start(&rig.arn, &token).await;
            rig.run_all(&STEPS[..done], &token).await;
            let made = rig.snapshot().await[&token].1.clone().expect("createSecret ran");

            rig.run_all(&STEPS[resume_from..], &token).await;
            let case = format!(
                "cut after {}, resumed from {}",
                step_name(STEPS[done - 1]),
                step_name(STEPS[resume_from])
            );
            let read = rig.source.get_with_previous(CURSOR_KEY).await.expect("read");
            assert_eq!(read.current.expose_secret(), made, "{case}");
            assert_eq!(read.previous.expect("previous").expose_secret(), old, "{case}");
            assert_eq!(rig.snapshot().await[&token].0, labels(&["AWSCURRENT"]), "{case}");
        }
    }
}

#[tokio::test]
async fn a_secret_rampart_does_not_generate_is_refused_and_left_alone() {
    let rig = Rig::new().await;
    let other = rampart_testkit::aws().await;
    rampart_secrets::provision(&other.config, &other.prefix)
        .await
        .expect("provision");
    let names = [
        // In the schema, but not generated.
        format!("{}/auth/cognito-client-secret", rig.prefix),
        // Generated, under another deployment's prefix.
        format!("{}/{CURSOR_KEY}", other.prefix),
        format!("{}/{CURSOR_KEY}-copy", rig.prefix),
    ];
    for name in &names {
        if name.starts_with(&rig.prefix) {
            (rig.client.create_secret())
                .name(name)
                .secret_string("a value this function must not touch")
                .send()
                .await
                .expect("create");
        }
        let token = new_token();
        rig.start(name, &token).await;
        let arn = rig
            .client
            .describe_secret()
            .secret_id(name)
            .send()
            .await
            .expect("describe")
            .arn
            .expect("arn");
        for secret_id in [name.as_str(), arn.as_str()] {
            let before = snapshot(&rig.client, name).await;
            for step in STEPS {
                let error = (rig.rotator.handle(event(step, secret_id, &token)).await).expect_err("refused");
                assert!(
                    matches!(&error, RotationError::NotRotatable(refused) if refused == name),
                    "{error}"
                );
            }
            assert_eq!(snapshot(&rig.client, name).await, before, "{name} unchanged");
        }
    }
}

#[tokio::test]
async fn a_token_that_is_not_a_pending_version_is_refused_and_changes_nothing() {
    let rig = Rig::new().await;
    let token = new_token();
    rig.start(&rig.arn, &token).await;
    rig.run_all(&STEPS, &token).await;
    let after = rig.snapshot().await;
    let previous = version_with(&after, "AWSPREVIOUS");
    let unknown = new_token();
    for step in STEPS {
        let error = rig.run(step, &unknown).await.expect_err("not a version");
        assert!(matches!(error, RotationError::UnknownVersion { .. }), "{error}");
        let error = rig.run(step, &previous).await.expect_err("not pending");
        assert!(matches!(error, RotationError::NotPending { .. }), "{error}");
    }
    assert_eq!(rig.snapshot().await, after);
}

#[tokio::test]
async fn a_secret_without_rotation_enabled_is_refused_and_changes_nothing() {
    let rig = Rig::new().await;
    let token = new_token();
    (rig.client.put_secret_value())
        .secret_id(&rig.arn)
        .client_request_token(&token)
        .secret_string(rampart_secrets::generate().expect("key").expose_secret())
        .version_stages("AWSPENDING")
        .send()
        .await
        .expect("a pending version");
    let before = rig.snapshot().await;
    for step in STEPS {
        let error = rig.run(step, &token).await.expect_err("rotation is not enabled");
        assert!(matches!(error, RotationError::RotationDisabled(_)), "{error}");
    }
    assert_eq!(rig.snapshot().await, before);
}

/// Collects every log line this test binary writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// A global subscriber at TRACE, the SDK's own events included: a scoped one would miss events
/// whose callsites other tests' threads registered first.
fn captured_logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(captured.clone())
            .with_ansi(false)
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
        captured
    })
}

#[tokio::test]
async fn no_value_is_in_an_error_a_debug_or_a_log_line() {
    let logs = captured_logs();
    let rig = Rig::new().await;
    let old = rig
        .source
        .get(CURSOR_KEY)
        .await
        .expect("first value")
        .expose_secret()
        .to_owned();
    let token = new_token();
    rig.start(&rig.arn, &token).await;
    rig.run_all(&STEPS, &token).await;
    let new = rig
        .source
        .get(CURSOR_KEY)
        .await
        .expect("new value")
        .expose_secret()
        .to_owned();

    let bad_value = "malformed-but-still-secret";
    let failed = new_token();
    rig.start(&rig.arn, &failed).await;
    (rig.client.put_secret_value())
        .secret_id(&rig.arn)
        .client_request_token(&failed)
        .secret_string(bad_value)
        .version_stages("AWSPENDING")
        .send()
        .await
        .expect("a malformed pending value");
    let mut shown = vec![format!("{:?}", rig.rotator)];
    for step in [TEST, FINISH] {
        let error = rig.run(step, &failed).await.expect_err("malformed");
        shown.push(format!("{error} {error:?}"));
        shown.push(lambda_runtime::Diagnostic::from(error).error_message);
    }
    let logged = String::from_utf8(logs.0.lock().expect("log buffer").clone()).expect("UTF-8 logs");
    assert!(
        logged.contains("rotate_secret.finish"),
        "the rotation's spans were captured"
    );
    shown.push(logged);
    for text in &shown {
        for value in [old.as_str(), new.as_str(), bad_value, ROTATION_TOKEN] {
            assert!(!text.contains(value), "a value appears in: {text}");
        }
    }
}
