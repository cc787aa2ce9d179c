//! The auth API's security counters, in the process's registry (`rampart_kernel::metrics`):
//!
//! - `rampart_auth_events_total{kind,outcome,reason}`: every audited event, so sign-ins by
//!   outcome (`kind="login"`), throttled attempts (`outcome="throttled"`), refresh-token reuse
//!   (`kind="refresh_token_reuse"`) and revocations (`logout`, `logout_all`, `session_revoke`,
//!   `user_disable`) each have their series;
//! - `rampart_auth_codes_sent_total{purpose}`: one-time codes mailed;
//! - `rampart_auth_audit_write_failures_total`: audit records the store refused.
//!
//! Every label value comes from the code (event kinds, outcomes, reasons, purposes), never from
//! a request. On Lambda each count is also printed as an Embedded Metric Format line.

use rampart_kernel::metrics::{Counter, EncodeLabelSet, Family, Registry, emf_count};

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

#[derive(Debug, Clone)]
pub struct SecurityMetrics {
    events: Family<EventLabels, Counter>,
    codes_sent: Family<PurposeLabels, Counter>,
    audit_write_failures: Counter,
    emf: bool,
}

impl SecurityMetrics {
    /// The counters, registered in `registry`; `audit_write_failures` is the audit log's own.
    pub fn new(registry: &Registry, audit_write_failures: Counter) -> Self {
        let metrics = Self {
            events: Family::default(),
            codes_sent: Family::default(),
            audit_write_failures,
            emf: registry.emf(),
        };
        registry.register(
            "rampart_auth_events",
            "Security events, by kind, outcome and reason, as the audit log records them",
            metrics.events.clone(),
        );
        registry.register(
            "rampart_auth_codes_sent",
            "One-time codes mailed, by purpose",
            metrics.codes_sent.clone(),
        );
        registry.register(
            "rampart_auth_audit_write_failures",
            "Audit records the store refused",
            metrics.audit_write_failures.clone(),
        );
        metrics
    }

    /// Counts an audited event.
    pub fn event(&self, event: &Event) {
        let labels = EventLabels {
            kind: label(event.kind),
            outcome: label(event.outcome),
            reason: event.reason.clone().unwrap_or_default(),
        };
        self.events.get_or_create(&labels).inc();
        if self.emf {
            let dimensions = [("Kind", labels.kind.as_str()), ("Outcome", labels.outcome.as_str())];
            println!("{}", emf_count("auth", "SecurityEvents", &dimensions, event.at_ms));
        }
    }

    /// Counts a mailed one-time code.
    pub fn code_sent(&self, purpose: CodePurpose, at_ms: i64) {
        self.codes_sent
            .get_or_create(&PurposeLabels {
                purpose: purpose.label(),
            })
            .inc();
        if self.emf {
            println!(
                "{}",
                emf_count("auth", "CodesSent", &[("Purpose", purpose.label())], at_ms)
            );
        }
    }

    /// Reports an audit write that failed (the audit log has counted it), so a gap in the log
    /// raises an alarm rather than passing unseen.
    pub fn audit_write_failed(&self, at_ms: i64) {
        if self.emf {
            println!("{}", emf_count("auth", "AuditWriteFailures", &[], at_ms));
        }
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
}
