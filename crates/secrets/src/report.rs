//! What a secret source tells `/readyz` and the metrics: how long the credential it reads with
//! has left, how often it logged in and renewed, and which values it serves stale for how long.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use rampart_kernel::health::ReadinessProbe;
use rampart_kernel::metrics::Registry;
use serde_json::json;

use crate::{SecretSource, SourceStatus};

/// `/readyz`'s `secrets` check: failing once the credential has run out with no new login and
/// no last good value is left to serve (a Vault outage shorter than `max_stale` takes no
/// replica out); when ready, says what it serves stale and for how long still.
#[derive(Debug)]
pub struct SecretsProbe(pub Arc<dyn SecretSource>);

#[async_trait::async_trait]
impl ReadinessProbe for SecretsProbe {
    fn name(&self) -> &'static str {
        "secrets"
    }

    async fn check(&self) -> Result<(), String> {
        let status = self.0.status();
        match status.credential_expires_in {
            Some(left) if left.is_zero() && status.stale.is_empty() => {
                Err("the credential secrets are read with has run out, and no value is left to serve".into())
            }
            _ => Ok(()),
        }
    }

    fn detail(&self) -> Option<serde_json::Value> {
        let status = self.0.status();
        if status == SourceStatus::default() {
            return None;
        }
        let stale: Vec<_> = status
            .stale
            .iter()
            .map(|(secret, left)| json!({ "secret": secret, "served_for_secs": left.as_secs() }))
            .collect();
        Some(json!({
            "credential_expires_in_secs": status.credential_expires_in.map(|left| left.as_secs()),
            "stale": stale,
        }))
    }
}

/// Adds the source's status to `registry`, read when scraped.
pub fn register_metrics(registry: &Registry, source: Arc<dyn SecretSource>) {
    registry.register_collector(StatusMetrics(source));
}

#[derive(Debug)]
struct StatusMetrics(Arc<dyn SecretSource>);

impl Collector for StatusMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        let status = self.0.status();
        let seconds = |left: std::time::Duration| i64::try_from(left.as_secs()).unwrap_or(i64::MAX);
        if let Some(left) = status.credential_expires_in {
            let gauge = ConstGauge::new(seconds(left));
            gauge.encode(encoder.encode_descriptor(
                "rampart_secrets_credential_expires_in_seconds",
                "Until the token the secrets are read with runs out",
                None,
                gauge.metric_type(),
            )?)?;
        }
        for (name, help, count) in [
            ("rampart_secrets_logins", "Logins to the secret store", status.logins),
            (
                "rampart_secrets_renewals",
                "Renewals of the secret store's token",
                status.renewals,
            ),
        ] {
            let counter = ConstCounter::new(count);
            counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)?;
        }
        let gauge = ConstGauge::new(0_i64);
        let mut family = encoder.encode_descriptor(
            "rampart_secrets_stale_served_for_seconds",
            "Per secret served stale because its store cannot be reached: how much longer it will be",
            None,
            gauge.metric_type(),
        )?;
        for (secret, left) in &status.stale {
            ConstGauge::new(seconds(*left)).encode(family.encode_family(&[("secret", secret.as_str())])?)?;
        }
        Ok(())
    }
}
