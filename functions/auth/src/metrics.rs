//! The auth API's security counters, in the process's registry (`rampart_kernel::metrics`):
//!
//! - `rampart_auth_events_total{kind,outcome,reason}`: every audited event, so sign-ins by
//!   outcome (`kind="login"`), throttled attempts (`outcome="throttled"`), refresh-token reuse
//!   (`kind="refresh_token_reuse"`) and revocations (`logout`, `logout_all`, `session_revoke`,
//!   `user_disable`) each have their series;
//! - `rampart_auth_codes_sent_total{purpose}`: one-time codes mailed;
//! - `rampart_auth_audit_write_failures_total`: audit records the store refused;
//! - `rampart_auth_unattributed_clients_total{reason}`: requests whose configured client
//!   address header was absent, repeated or unreadable (EMF `UnattributedClients`).
//!
//! Every label value comes from the code (event kinds, outcomes, reasons, purposes), never from
//! a request. On Lambda each count is also printed as an Embedded Metric Format line.

use rampart_kernel::metrics::{Counter, EncodeLabelSet, Family, Registry};

use crate::audit::Event;
use crate::codes::CodePurpose;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    kind: String,
    outcome: String,
    reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PurposeLabels {
    purpose: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Debug, Clone)]
pub struct SecurityMetrics {
    events: Family<EventLabels, Counter>,
    codes_sent: Family<PurposeLabels, Counter>,
    unattributed: Family<ReasonLabels, Counter>,
    /// Where the counts go as EMF lines on Lambda.
    registry: Registry,
}

impl SecurityMetrics {
    /// The counters, registered in `registry`, with the audit log's own count of failed writes.
    pub fn new(registry: &Registry, audit_write_failures: Counter) -> Self {
        registry.register(
            "rampart_auth_audit_write_failures",
            "Audit records the store refused",
            audit_write_failures,
        );
        Self {
            events: registry.add(
                "rampart_auth_events",
                "Security events, by kind, outcome and reason, as the audit log records them",
                Family::default(),
            ),
            codes_sent: registry.add(
                "rampart_auth_codes_sent",
                "One-time codes mailed, by purpose",
                Family::default(),
            ),
            unattributed: registry.add(
                "rampart_auth_unattributed_clients",
                "Requests whose client address header was absent, repeated or unreadable, by reason",
                Family::default(),
            ),
            registry: registry.clone(),
        }
    }

    /// Counts an audited event.
    pub fn event(&self, event: &Event) {
        let labels = EventLabels {
            kind: label(event.kind),
            outcome: label(event.outcome),
            reason: event.reason.as_deref().unwrap_or_default().to_owned(),
        };
        self.events.get_or_create(&labels).inc();
        let dimensions = [("Kind", labels.kind.as_str()), ("Outcome", labels.outcome.as_str())];
        self.registry
            .count_emf("auth", "SecurityEvents", &dimensions, event.at_ms);
    }

    /// Counts a mailed one-time code.
    pub fn code_sent(&self, purpose: CodePurpose, at_ms: i64) {
        self.codes_sent
            .get_or_create(&PurposeLabels {
                purpose: purpose.label(),
            })
            .inc();
        self.registry
            .count_emf("auth", "CodesSent", &[("Purpose", purpose.label())], at_ms);
    }

    /// Counts a request throttled under the unattributed key, by why (`absent`, `repeated`,
    /// `unreadable`): behind CloudFront a steady count means a misconfigured edge.
    pub fn unattributed(&self, reason: &'static str) {
        self.unattributed.get_or_create(&ReasonLabels { reason }).inc();
        self.registry.count_emf(
            "auth",
            "UnattributedClients",
            &[("Reason", reason)],
            rampart_kernel::now_unix_ms(),
        );
    }

    /// Reports an audit write that failed (the audit log has counted it), so a gap in the log
    /// raises an alarm on Lambda too.
    pub fn audit_write_failed(&self, at_ms: i64) {
        self.registry.count_emf("auth", "AuditWriteFailures", &[], at_ms);
    }
}

/// The snake_case name an audit record gives a kind or an outcome.
fn label(value: impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::audit::{EventKind, Outcome};

    #[test]
    fn events_are_counted_under_the_names_the_audit_log_uses() {
        let registry = Registry::default();
        let metrics = SecurityMetrics::new(&registry, Counter::default());
        metrics.event(&Event::new(EventKind::RefreshTokenReuse, Outcome::Failure, 0).failed(Outcome::Failure, "reuse"));
        metrics.code_sent(CodePurpose::ResetPassword, 0);
        let text = registry.render();
        assert!(
            text.contains(
                r#"rampart_auth_events_total{kind="refresh_token_reuse",outcome="failure",reason="reuse"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"rampart_auth_codes_sent_total{purpose="reset_password"} 1"#),
            "{text}"
        );
        assert!(text.contains("rampart_auth_audit_write_failures_total 0"), "{text}");
    }

    #[test]
    fn on_lambda_each_count_is_also_an_emf_line_naming_what_happened() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let registry = Registry::with_emf_sink(Arc::new(move |line: &str| {
            sink.lock().expect("lines").push(line.to_owned());
        }));
        let metrics = SecurityMetrics::new(&registry, Counter::default());
        metrics.event(&Event::new(EventKind::Login, Outcome::Throttled, 7));
        metrics.code_sent(CodePurpose::ConfirmSignUp, 8);
        metrics.audit_write_failed(9);
        let lines: Vec<serde_json::Value> = lines
            .lock()
            .expect("lines")
            .iter()
            .map(|line| serde_json::from_str(line).expect("JSON"))
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["Kind"], "login");
        assert_eq!(lines[0]["Outcome"], "throttled");
        assert_eq!(lines[0]["SecurityEvents"], 1);
        assert_eq!(lines[1]["Purpose"], "confirm_sign_up");
        assert_eq!(lines[1]["CodesSent"], 1);
        assert_eq!(lines[2]["AuditWriteFailures"], 1);
        assert_eq!(lines[2]["_aws"]["Timestamp"], 9);
    }
}
