//! Typed configuration: `RAMPART_*` environment variables over an optional TOML file.
//!
//! Nested keys are separated by `__` in the environment (`RAMPART_LISTEN__PROXY` sets
//! `listen.proxy`). Unknown keys are rejected so that a typo cannot silently fall back to a
//! default, and every error names the key and where its value came from.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::{Deserialize, Serialize};

use crate::forwarded::{ClientAddressHeader, TrustedProxies};

/// Environment variable naming an optional TOML file read beneath the environment.
pub const CONFIG_FILE_ENV: &str = "RAMPART_CONFIG";
/// Environment variable naming the auth-proxy's routes file (`rampart-auth-proxy --routes`).
pub const PROXY_ROUTES_ENV: &str = "RAMPART_PROXY_ROUTES";
/// `RAMPART_*` variables that are not settings keys but a binary's own arguments: the loader
/// skips them rather than refusing them as unknown keys. Every other unknown one is refused.
pub const NOT_SETTINGS_ENV: &[&str] = &[CONFIG_FILE_ENV, PROXY_ROUTES_ENV];
/// Prefix of every Rampart environment variable.
pub const ENV_PREFIX: &str = "RAMPART_";
/// Separator of nested keys in environment variable names.
pub const ENV_NESTING: &str = "__";

/// A configuration value that stops start-up; the message names the key and its source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {key}: {message}")]
pub struct ConfigError {
    /// Dotted key, e.g. `listen.proxy`, followed by the environment variable or file it came from.
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Which adapters back the ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// SQLite files, a local signing key and a local secrets file under `data_dir`.
    #[default]
    Embedded,
    /// Cognito, KMS, DynamoDB and Secrets Manager via the standard AWS configuration chain.
    Aws,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub backend: Backend,
    /// Prefix of every AWS resource name (tables, keys, pool, secrets): `<prefix>-<name>`.
    pub resource_prefix: String,
    /// Where the embedded adapters keep their files (created with owner-only permissions).
    pub data_dir: PathBuf,
    pub listen: ListenSettings,
    pub http: HttpSettings,
    pub telemetry: TelemetrySettings,
    pub tokens: TokenSettings,
    pub sessions: SessionSettings,
    pub audit: AuditSettings,
    pub core: CoreSettings,
    pub mail: MailSettings,
    pub authorizer: AuthorizerSettings,
    pub aws: AwsSettings,
    pub secrets: SecretsSettings,
    pub mtls: MtlsSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            backend: Backend::Embedded,
            resource_prefix: "rampart-local".into(),
            data_dir: PathBuf::from(".rampart"),
            listen: ListenSettings::default(),
            http: HttpSettings::default(),
            telemetry: TelemetrySettings::default(),
            tokens: TokenSettings::default(),
            sessions: SessionSettings::default(),
            audit: AuditSettings::default(),
            core: CoreSettings::default(),
            mail: MailSettings::default(),
            authorizer: AuthorizerSettings::default(),
            aws: AwsSettings::default(),
            secrets: SecretsSettings::default(),
            mtls: MtlsSettings::default(),
        }
    }
}

/// Loopback addresses of the local platform's servers. Port 0 picks a free port.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenSettings {
    pub proxy: SocketAddr,
    /// The process's admin listener (`/metrics`: the proxy's, core's or, under `rampart up`,
    /// every component's), kept apart from the public ones.
    pub admin: SocketAddr,
    pub auth: SocketAddr,
    pub core: SocketAddr,
}

impl Default for ListenSettings {
    fn default() -> Self {
        Self {
            proxy: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin: SocketAddr::from(([127, 0, 0, 1], 9090)),
            auth: SocketAddr::from(([127, 0, 0, 1], 8081)),
            core: SocketAddr::from(([127, 0, 0, 1], 8082)),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Longest a handler may take before the client gets 503.
    pub request_timeout_secs: u64,
    /// Largest accepted request body.
    pub body_limit_bytes: usize,
    /// Largest accepted request head (request line and headers); at least 8192.
    pub max_header_bytes: usize,
    /// Most header fields accepted in one request.
    pub max_headers: usize,
    /// Longest a client may take to send its request head (slow-loris guard).
    pub header_read_timeout_secs: u64,
    /// Longest shutdown waits for in-flight requests.
    pub drain_timeout_secs: u64,
    /// Browser origins allowed by CORS; empty allows none.
    pub cors_allowed_origins: Vec<String>,
    /// Peers (addresses or CIDRs) whose `X-Forwarded-For` names the client; empty trusts none.
    pub trusted_proxies: TrustedProxies,
    /// A header in which an edge we trust names the client (`address:port`, e.g.
    /// `cloudfront-viewer-address`); unset reads none. On Lambda it is believed as API Gateway
    /// passes it on (the stage's web ACL admits only requests through CloudFront); served
    /// directly, only from `trusted_proxies`, and then before their `X-Forwarded-For`.
    pub client_address_header: Option<ClientAddressHeader>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            request_timeout_secs: 10,
            body_limit_bytes: 64 * 1024,
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            header_read_timeout_secs: 5,
            drain_timeout_secs: 20,
            cors_allowed_origins: Vec::new(),
            trusted_proxies: TrustedProxies::default(),
            client_address_header: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line: what CloudWatch and log shippers want.
    #[default]
    Json,
    /// Human-readable lines for a terminal.
    Pretty,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetrySettings {
    pub log_format: LogFormat,
    /// A `tracing` filter directive, e.g. `info` or `rampart=debug,info`.
    pub log_level: String,
    /// OTLP/HTTP endpoint (e.g. the ADOT collector's `http://127.0.0.1:4318`); no export when unset.
    pub otlp_endpoint: Option<String>,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Json,
            log_level: "info".into(),
            otlp_endpoint: None,
        }
    }
}

/// The longest access-token lifetime Rampart allows.
pub const MAX_ACCESS_TOKEN_TTL_SECS: u64 = 15 * 60;

/// JWS algorithms Rampart signs access tokens with. Each key has exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SigningAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256: the default, about four times cheaper to verify.
    #[default]
    RS256,
    /// ECDSA on P-256 with SHA-256; signatures are JOSE `r || s` (64 bytes).
    ES256,
}

impl SigningAlgorithm {
    pub fn name(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::ES256 => "ES256",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenSettings {
    /// `iss` of every access token, and the base of the OIDC discovery document.
    pub issuer: String,
    /// `aud` of every access token.
    pub audience: String,
    pub access_token_ttl_secs: u64,
    /// Algorithm of the local signing key. A KMS or Transit key's own type decides for those.
    pub algorithm: SigningAlgorithm,
    /// Tolerated clock difference when checking `exp` and `nbf`.
    pub leeway_secs: u64,
    /// Where access tokens are signed.
    pub signer: TokenSigner,
    /// Read when `signer = "transit"`.
    pub transit: TransitSettings,
}

/// Where the access-token signing keys live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenSigner {
    /// The backend's own: key files under `data_dir/keys` (embedded) or KMS (aws).
    #[default]
    Platform,
    /// Vault's Transit engine, reached with the `secrets.vault` connection and login.
    Transit,
}

/// The Transit key access tokens are signed with: each of its versions is one key of the ring.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransitSettings {
    /// Where the Transit engine is mounted.
    pub mount: String,
    /// The key's name: `rsa-2048` (or larger) signs RS256, `ecdsa-p256` ES256.
    pub key: String,
}

impl Default for TransitSettings {
    fn default() -> Self {
        Self {
            mount: "transit".into(),
            key: "rampart-access-token".into(),
        }
    }
}

/// A Transit key name as Vault takes it: ASCII letters, digits and `_`, with `-` and `.` inside.
pub fn is_transit_key_name(name: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = name.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            bytes.len() <= 128 && word(first) && word(last) && bytes.iter().all(|&b| word(b) || b == b'-' || b == b'.')
        }
        _ => false,
    }
}

/// A mount path: one or more segments of [`is_transit_key_name`] form joined by `/`.
fn is_mount_path(path: &str) -> bool {
    path.len() <= 256 && path.split('/').all(is_transit_key_name)
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            issuer: "http://127.0.0.1:8080".into(),
            audience: "rampart".into(),
            access_token_ttl_secs: MAX_ACCESS_TOKEN_TTL_SECS,
            algorithm: SigningAlgorithm::RS256,
            leeway_secs: 30,
            signer: TokenSigner::Platform,
            transit: TransitSettings::default(),
        }
    }
}

/// The API Gateway authorizer (`functions/authorizer`). It trusts `tokens.issuer` and reads the
/// keys and revocation feed that issuer's discovery document publishes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthorizerSettings {
    /// Scopes a token must all carry to pass (`RAMPART_AUTHORIZER__REQUIRED_SCOPES='["core:read"]'`).
    pub required_scopes: Vec<String>,
}

/// How long a sign-in lasts through refreshes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionSettings {
    /// A session not refreshed for this long ends.
    pub idle_timeout_secs: u64,
    /// A session ends this long after sign-in, however often it is refreshed.
    pub absolute_lifetime_secs: u64,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 7 * 24 * 3600,
            absolute_lifetime_secs: 30 * 24 * 3600,
        }
    }
}

/// The core API's tenant data keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CoreSettings {
    /// How long a plaintext data key stays in memory after it was unwrapped: the key keeper
    /// (KMS) is asked once per tenant and key version per this long, and a shredded tenant's
    /// key lives at most this long in another process.
    pub data_key_cache_secs: u64,
    /// Most plaintext data keys held at once; the oldest leaves first.
    pub data_key_cache_entries: usize,
    /// The auth API's base URL, where core reads the issuer's keys and revocation feed to check
    /// every token itself; unset: `tokens.issuer`.
    pub auth_url: Option<String>,
}

impl Default for CoreSettings {
    fn default() -> Self {
        Self {
            data_key_cache_secs: 300,
            data_key_cache_entries: 10_000,
            auth_url: None,
        }
    }
}

/// Mutual TLS between the auth-proxy and core: core listens with TLS and serves only the
/// proxy's certificate; the proxy presents it and checks core's.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MtlsSettings {
    pub enabled: bool,
    /// Where certificates come from: `local` (the three-tier CA under `data_dir/pki`, made on
    /// first use) or `vault` (the PKI engine, reached as `secrets.vault` says).
    pub issuer: CertificateIssuerKind,
    /// `issuer = "vault"`: the intermediate's mount, whose role `<service>` issues.
    pub vault_intermediate_mount: String,
    /// `issuer = "vault"`: the root's mount, whose issuer is the one root trusted.
    pub vault_root_mount: String,
    /// The SPIFFE trust domain: identities are `spiffe://<trust_domain>/<service>`.
    pub trust_domain: String,
    /// How long a service certificate lives; it is renewed at about half that.
    pub certificate_ttl_secs: u64,
}

impl Default for MtlsSettings {
    fn default() -> Self {
        // An hour, as SPIRE's SVIDs: a stolen key is useful for an hour at most.
        Self {
            enabled: true,
            issuer: CertificateIssuerKind::Local,
            vault_intermediate_mount: "pki_int".into(),
            vault_root_mount: "pki".into(),
            trust_domain: "rampart".into(),
            certificate_ttl_secs: 3600,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CertificateIssuerKind {
    Local,
    Vault,
}

/// The security audit log.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditSettings {
    /// Each audit record is deleted this many days after the event (DynamoDB TTL; the embedded
    /// store's purge). 1 to 3,650; at least 90 with `backend = "aws"`.
    pub retention_days: u32,
}

impl Default for AuditSettings {
    fn default() -> Self {
        // A year and a month: a year of history, as PCI DSS 10.5.1 asks, whenever it is read.
        Self { retention_days: 400 }
    }
}

/// Mail to account owners: one-time codes and security notices (password, second-factor and
/// session-wide changes). The embedded platform writes them to `outbox.log`; with
/// `backend = "aws"` SES sends them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailSettings {
    /// The SES-verified From address, e.g. `Rampart <no-reply@example.com>`; required when
    /// `backend = "aws"`.
    pub sender: Option<String>,
    /// An SES configuration set to send through (bounce and complaint handling), if any.
    pub configuration_set: Option<String>,
    /// The least time, in milliseconds, that register, confirmation resend, forgot-password and
    /// every refused sign-in take to answer. Whether they mailed someone depends on whether the
    /// address has an account, and mailing takes time: answering no sooner than this hides
    /// which it was. 0 turns the floor off.
    pub answer_floor_ms: u64,
}

impl Default for MailSettings {
    fn default() -> Self {
        // Above what Cognito's SignUp and an SES SendEmail take together in the common case.
        Self {
            sender: None,
            configuration_set: None,
            answer_floor_ms: 500,
        }
    }
}

/// The shortest audit retention a deployment may run with: three months online, the least
/// PCI DSS 10.5.1 keeps immediately available.
pub const MIN_PRODUCTION_AUDIT_RETENTION_DAYS: u32 = 90;

/// Identifiers that AWS generates and therefore cannot be derived from `resource_prefix`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AwsSettings {
    pub user_pool_id: Option<String>,
    pub user_pool_client_id: Option<String>,
}

/// Where the services read their runtime secrets (the cursor key, the Cognito client secret).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecretsSettings {
    pub source: SecretsSource,
    /// A secret in use is read again after this many seconds, so a rotation reaches every
    /// process; its previous value is accepted meanwhile.
    pub refresh_secs: u64,
    /// Read when `source = "vault"`.
    pub vault: VaultClientSettings,
}

impl Default for SecretsSettings {
    fn default() -> Self {
        Self {
            source: SecretsSource::Platform,
            refresh_secs: 60,
            vault: VaultClientSettings::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretsSource {
    /// The backend's own: `data_dir/secrets.json` (embedded) or Secrets Manager (aws).
    #[default]
    Platform,
    /// Vault's KV v2 engine, at `<kv_mount>/data/<resource_prefix>/<name>`.
    Vault,
}

/// How a service reaches Vault and proves who it is. Credentials are read from files (a
/// mounted secret, the projected service-account token), never from the environment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VaultClientSettings {
    /// `https://vault.example:8200`; plain `http://` only on a loopback host.
    pub address: Option<String>,
    /// PEM bundle of the CA that signed Vault's certificate, if the system does not trust it.
    pub ca_file: Option<PathBuf>,
    /// The KV v2 engine's mount.
    pub kv_mount: String,
    pub login: VaultLoginMethod,
    /// Where the auth method is mounted; unset: its name (`approle`, `jwt`).
    pub auth_mount: Option<String>,
    /// `login = "jwt"`: the role to log in as.
    pub role: Option<String>,
    /// `login = "approle"`: files holding the role id and the secret id.
    pub role_id_file: Option<PathBuf>,
    pub secret_id_file: Option<PathBuf>,
    /// `login = "jwt"`: the service-account token, read anew at each login. `login = "token"`:
    /// the Vault token (a Vault Agent's sink).
    pub token_file: Option<PathBuf>,
    /// While Vault cannot be reached, a value is served this long after it was read.
    pub max_stale_secs: u64,
}

impl Default for VaultClientSettings {
    fn default() -> Self {
        Self {
            address: None,
            ca_file: None,
            kv_mount: "rampart".into(),
            login: VaultLoginMethod::Jwt,
            auth_mount: None,
            role: None,
            role_id_file: None,
            secret_id_file: None,
            token_file: None,
            max_stale_secs: 3600,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VaultLoginMethod {
    /// The EKS service-account token, checked by Vault's `jwt` auth method (the default).
    Jwt,
    AppRole,
    Token,
}

impl VaultClientSettings {
    fn validate(&self, refresh_secs: u64) -> Result<(), ConfigError> {
        let key = |name: &str| format!("secrets.vault.{name}");
        let Some(address) = &self.address else {
            return Err(ConfigError::new(
                key("address"),
                "must be set when secrets.source = \"vault\", tokens.signer = \"transit\" or mtls.issuer = \"vault\"",
            ));
        };
        if !is_https_or_loopback(address) {
            return Err(ConfigError::new(
                key("address"),
                "must be an https URL (plain http only on a loopback host): the token and every secret cross it",
            ));
        }
        if self.kv_mount.is_empty() {
            return Err(ConfigError::new(key("kv_mount"), "must not be empty"));
        }
        let required: &[(&str, bool)] = match self.login {
            VaultLoginMethod::Jwt => &[("role", self.role.is_some()), ("token_file", self.token_file.is_some())],
            VaultLoginMethod::AppRole => &[
                ("role_id_file", self.role_id_file.is_some()),
                ("secret_id_file", self.secret_id_file.is_some()),
            ],
            VaultLoginMethod::Token => &[("token_file", self.token_file.is_some())],
        };
        if let Some((name, _)) = required.iter().find(|(_, set)| !set) {
            let login = match self.login {
                VaultLoginMethod::Jwt => "jwt",
                VaultLoginMethod::AppRole => "approle",
                VaultLoginMethod::Token => "token",
            };
            return Err(ConfigError::new(
                key(name),
                format!("must be set for login = \"{login}\""),
            ));
        }
        if !(refresh_secs..=86_400).contains(&self.max_stale_secs) {
            return Err(ConfigError::new(
                key("max_stale_secs"),
                "must be at least secrets.refresh_secs and at most a day",
            ));
        }
        Ok(())
    }
}

impl Settings {
    /// Loads settings from the process environment, over the TOML file named by `RAMPART_CONFIG`
    /// (or `file`, when given), then validates them.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let env_file = std::env::var_os(CONFIG_FILE_ENV).map(PathBuf::from);
        let file = file.map(Path::to_path_buf).or(env_file);
        let mut figment = Figment::new();
        if let Some(path) = &file {
            if !path.is_file() {
                return Err(ConfigError::new(
                    CONFIG_FILE_ENV,
                    format!("configuration file {} does not exist", path.display()),
                ));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        Self::from_figment(figment.merge(Self::environment()))
    }

    /// The `RAMPART_*` environment as settings, without [`NOT_SETTINGS_ENV`].
    fn environment() -> Env {
        let skipped: Vec<&str> = NOT_SETTINGS_ENV
            .iter()
            .filter_map(|name| name.strip_prefix(ENV_PREFIX))
            .collect();
        Env::prefixed(ENV_PREFIX).ignore(&skipped).split(ENV_NESTING)
    }

    /// Extracts and validates settings from any figment (tests build theirs from strings).
    pub fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let settings: Settings = figment.extract().map_err(|errors| {
            let Some(error) = errors.into_iter().next() else {
                return ConfigError::new("(unknown)", "configuration could not be read");
            };
            let key = error.path.join(".");
            let source = error.metadata.as_ref().map(|metadata| {
                if metadata.name.contains("environment") {
                    let name = error
                        .path
                        .iter()
                        .map(|p| p.to_uppercase())
                        .collect::<Vec<_>>()
                        .join(ENV_NESTING);
                    format!("{ENV_PREFIX}{name}")
                } else {
                    metadata
                        .source
                        .as_ref()
                        .map_or_else(|| metadata.name.to_string(), |s| s.to_string())
                }
            });
            let key = match source {
                Some(source) if !key.is_empty() => format!("{key} (from {source})"),
                Some(source) => source,
                None => key,
            };
            ConfigError::new(key, error.kind.to_string())
        })?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what the types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !crate::schema::is_valid_resource_prefix(&self.resource_prefix) {
            return Err(ConfigError::new(
                "resource_prefix",
                format!("must be {}", crate::schema::schema().resource_prefix.description),
            ));
        }
        let ttl = self.tokens.access_token_ttl_secs;
        if !(60..=MAX_ACCESS_TOKEN_TTL_SECS).contains(&ttl) {
            return Err(ConfigError::new(
                "tokens.access_token_ttl_secs",
                format!("must be between 60 and {MAX_ACCESS_TOKEN_TTL_SECS} seconds"),
            ));
        }
        if self.tokens.issuer.is_empty() || !self.tokens.issuer.starts_with("http") {
            return Err(ConfigError::new("tokens.issuer", "must be an http(s) URL"));
        }
        if self.tokens.leeway_secs > 120 {
            return Err(ConfigError::new("tokens.leeway_secs", "must be at most 120 seconds"));
        }
        if self.tokens.audience.is_empty() {
            return Err(ConfigError::new("tokens.audience", "must not be empty"));
        }
        let sessions = &self.sessions;
        if !(300..=365 * 24 * 3600).contains(&sessions.absolute_lifetime_secs) {
            return Err(ConfigError::new(
                "sessions.absolute_lifetime_secs",
                "must be between 300 seconds and 365 days",
            ));
        }
        if !(1..=3600).contains(&self.core.data_key_cache_secs) {
            return Err(ConfigError::new(
                "core.data_key_cache_secs",
                "must be between 1 second and an hour (a shredded tenant's key lives this long in another process)",
            ));
        }
        if self.core.data_key_cache_entries == 0 {
            return Err(ConfigError::new("core.data_key_cache_entries", "must be at least 1"));
        }
        if !(1..=3650).contains(&self.audit.retention_days) {
            return Err(ConfigError::new(
                "audit.retention_days",
                "must be between 1 and 3,650 days",
            ));
        }
        if !(300..=sessions.absolute_lifetime_secs).contains(&sessions.idle_timeout_secs) {
            return Err(ConfigError::new(
                "sessions.idle_timeout_secs",
                "must be at least 300 seconds and at most sessions.absolute_lifetime_secs",
            ));
        }
        let http = &self.http;
        if !(1..=10 * 1024 * 1024).contains(&http.body_limit_bytes) {
            return Err(ConfigError::new(
                "http.body_limit_bytes",
                "must be between 1 and 10485760",
            ));
        }
        if !(8192..=1024 * 1024).contains(&http.max_header_bytes) {
            return Err(ConfigError::new(
                "http.max_header_bytes",
                "must be between 8192 and 1048576",
            ));
        }
        if !(8..=1024).contains(&http.max_headers) {
            return Err(ConfigError::new("http.max_headers", "must be between 8 and 1024"));
        }
        for (key, secs) in [
            ("http.request_timeout_secs", http.request_timeout_secs),
            ("http.header_read_timeout_secs", http.header_read_timeout_secs),
            ("http.drain_timeout_secs", http.drain_timeout_secs),
        ] {
            if !(1..=300).contains(&secs) {
                return Err(ConfigError::new(key, "must be between 1 and 300 seconds"));
            }
        }
        if self.mail.answer_floor_ms >= http.request_timeout_secs.saturating_mul(1000) {
            return Err(ConfigError::new(
                "mail.answer_floor_ms",
                "must be shorter than http.request_timeout_secs",
            ));
        }
        for origin in &http.cors_allowed_origins {
            let well_formed = (origin.starts_with("https://") || origin.starts_with("http://"))
                && !origin.ends_with('/')
                && http::HeaderValue::from_str(origin).is_ok();
            if !well_formed || origin.contains('*') {
                return Err(ConfigError::new(
                    "http.cors_allowed_origins",
                    format!("{origin:?} is not an exact origin like https://app.example.com"),
                ));
            }
        }
        if !(1..=86_400).contains(&self.mtls.certificate_ttl_secs) {
            return Err(ConfigError::new(
                "mtls.certificate_ttl_secs",
                "must be between 1 second and a day",
            ));
        }
        if !(1..=3600).contains(&self.secrets.refresh_secs) {
            return Err(ConfigError::new(
                "secrets.refresh_secs",
                "must be between 1 second and an hour",
            ));
        }
        let vault_issues = self.mtls.enabled && self.mtls.issuer == CertificateIssuerKind::Vault;
        if self.secrets.source == SecretsSource::Vault || self.tokens.signer == TokenSigner::Transit || vault_issues {
            self.secrets.vault.validate(self.secrets.refresh_secs)?;
        }
        if self.tokens.signer == TokenSigner::Transit {
            let transit = &self.tokens.transit;
            if !is_mount_path(&transit.mount) {
                return Err(ConfigError::new(
                    "tokens.transit.mount",
                    "must be a Vault mount path: letters, digits, `_`, `-` and `.` in segments joined by `/`",
                ));
            }
            if !is_transit_key_name(&transit.key) {
                return Err(ConfigError::new(
                    "tokens.transit.key",
                    "must be a Transit key name: letters, digits and `_`, with `-` and `.` inside",
                ));
            }
        }
        tracing_subscriber::EnvFilter::try_new(&self.telemetry.log_level)
            .map_err(|e| ConfigError::new("telemetry.log_level", e.to_string()))?;
        if let Some(endpoint) = &self.telemetry.otlp_endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Err(ConfigError::new("telemetry.otlp_endpoint", "must be an http(s) URL"));
        }
        let mut hazards = self.production_hazards().into_iter();
        if let Some(mut first) = hazards.next() {
            for more in hazards {
                first.message = format!("{}; and {more}", first.message);
            }
            return Err(first);
        }
        Ok(())
    }

    /// Values that serve a laptop but endanger a deployment, each refused with
    /// `backend = "aws"` (all named in one error, so one `rampart config check` finds them all).
    pub fn production_hazards(&self) -> Vec<ConfigError> {
        let mut hazards = Vec::new();
        if self.backend != Backend::Aws {
            return hazards;
        }
        if !is_https_or_loopback(&self.tokens.issuer) {
            hazards.push(ConfigError::new(
                "tokens.issuer",
                "must be an https URL with backend = \"aws\" (plain http only on a loopback host): \
                 relying parties fetch the signing keys from it",
            ));
        }
        if let Some(origin) = self.http.cors_allowed_origins.iter().find(|o| !is_https_or_loopback(o)) {
            hazards.push(ConfigError::new(
                "http.cors_allowed_origins",
                format!("{origin:?} must be https with backend = \"aws\": a page served over plain http can be altered in transit"),
            ));
        }
        if self.http.trusted_proxies.trusts_everyone() {
            hazards.push(ConfigError::new(
                "http.trusted_proxies",
                "trusts every address, so any client could choose the address it is throttled and audited by",
            ));
        }
        if self.audit.retention_days < MIN_PRODUCTION_AUDIT_RETENTION_DAYS {
            hazards.push(ConfigError::new(
                "audit.retention_days",
                format!(
                    "must be at least {MIN_PRODUCTION_AUDIT_RETENTION_DAYS} with backend = \"aws\": \
                     an incident is often found months after it began"
                ),
            ));
        }
        let filter = self.telemetry.log_level.to_ascii_lowercase();
        if filter.contains("debug") || filter.contains("trace") {
            hazards.push(ConfigError::new(
                "telemetry.log_level",
                "must not enable debug or trace with backend = \"aws\": the AWS SDK logs request bodies there, \
                 Cognito passwords among them",
            ));
        }
        hazards
    }

    /// Creates `data_dir` (owner-only, 0700) if needed and returns the path of `file` in it.
    pub fn data_file(&self, file: &str) -> Result<PathBuf, ConfigError> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = &self.data_dir;
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| ConfigError::new("data_dir", format!("cannot create {}: {e}", dir.display())))?;
        }
        Ok(dir.join(file))
    }

    /// A setting the AWS backend needs, or an error naming it.
    pub fn require_aws<'a>(value: &'a Option<String>, key: &str) -> Result<&'a str, ConfigError> {
        value.as_deref().filter(|v| !v.is_empty()).ok_or_else(|| {
            let env = format!("{ENV_PREFIX}{}", key.replace('.', ENV_NESTING).to_uppercase());
            ConfigError::new(key, format!("is required when backend = \"aws\" (set {env})"))
        })
    }
}

/// Whether `url` is https, or http to a loopback host (a local emulator or collector).
///
/// Parsed as the HTTP clients here parse it (the `url` crate, WHATWG rules), so the host
/// checked is the host they connect to: `http://evil.example\@127.0.0.1` is `evil.example`.
pub fn is_https_or_loopback(url: &str) -> bool {
    let Ok(url) = url::Url::parse(url) else {
        return false;
    };
    match (url.scheme(), url.host()) {
        ("https", Some(_)) => true,
        ("http", Some(url::Host::Ipv4(ip))) => ip.is_loopback(),
        ("http", Some(url::Host::Ipv6(ip))) => ip.is_loopback(),
        ("http", Some(url::Host::Domain(name))) => name.eq_ignore_ascii_case("localhost"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::providers::Serialized;

    fn from_toml(toml: &str) -> Result<Settings, ConfigError> {
        Settings::from_figment(Figment::new().merge(Toml::string(toml)))
    }

    #[test]
    fn unsafe_production_values_are_all_named_with_the_aws_backend() {
        let risky = "tokens.issuer = \"http://auth.example.com\"\n\
                     http.trusted_proxies = [\"0.0.0.0/0\"]\n\
                     http.cors_allowed_origins = [\"http://app.example.com\"]\n\
                     telemetry.log_level = \"aws_smithy_runtime=trace,info\"\n\
                     audit.retention_days = 30\n";
        // Harmless on a laptop...
        from_toml(risky).expect("the embedded backend takes them");
        // ...refused for a deployment, every one of them in the one message.
        let error = from_toml(&format!("backend = \"aws\"\n{risky}")).expect_err("refused");
        assert_eq!(error.key, "tokens.issuer");
        let text = error.to_string();
        for key in [
            "http.cors_allowed_origins",
            "http.trusted_proxies",
            "telemetry.log_level",
            "audit.retention_days",
        ] {
            assert!(text.contains(key), "{key} named in: {text}");
        }
        // Loopback over plain http is an emulator or a local collector, not a deployment hazard.
        for issuer in [
            "http://127.0.0.1:8080",
            "http://localhost",
            "http://[::1]:9000/x",
            "https://auth.example.com",
        ] {
            from_toml(&format!("backend = \"aws\"\ntokens.issuer = \"{issuer}\"")).expect(issuer);
        }
        for issuer in [
            "http://127.0.0.1.example.com",
            "http://user@evil.example",
            "http://localhost.example",
        ] {
            let error = from_toml(&format!("backend = \"aws\"\ntokens.issuer = \"{issuer}\"")).expect_err(issuer);
            assert_eq!(error.key, "tokens.issuer");
        }
    }

    #[test]
    fn defaults_are_valid_and_embedded() {
        let settings = from_toml("").expect("defaults load");
        assert_eq!(settings.backend, Backend::Embedded);
        assert_eq!(settings.listen.proxy.port(), 8080);
    }

    #[test]
    // The closure's type is figment's: `Jail` takes one returning its large `figment::Error`.
    #[allow(clippy::result_large_err)]
    fn a_client_address_header_must_be_a_header_name() {
        let settings = from_toml("http.client_address_header = \"CloudFront-Viewer-Address\"").expect("valid");
        let header = settings.http.client_address_header.expect("set");
        assert_eq!(header.name().as_str(), "cloudfront-viewer-address");
        assert!(from_toml("").expect("defaults").http.client_address_header.is_none());
        for bad in ["cloudfront viewer address", "", "viewer:address"] {
            let error = from_toml(&format!("http.client_address_header = {bad:?}")).expect_err(bad);
            assert!(error.key.starts_with("http.client_address_header"), "{error}");
            assert!(error.message.contains("is not an HTTP header name"), "{error}");
        }
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("RAMPART_HTTP__CLIENT_ADDRESS_HEADER", "cloudfront viewer address");
            let error = Settings::from_figment(Figment::new().merge(Settings::environment())).expect_err("refused");
            assert_eq!(
                error.key,
                "http.client_address_header (from RAMPART_HTTP__CLIENT_ADDRESS_HEADER)"
            );
            Ok(())
        });
    }

    #[test]
    // The closure's type is figment's: `Jail` takes one returning its large `figment::Error`.
    #[allow(clippy::result_large_err)]
    fn malformed_value_names_the_key() {
        let err = from_toml("[listen]\nproxy = \"not-an-address\"").expect_err("must fail");
        assert!(err.key.starts_with("listen.proxy"), "{err}");
        // Reads the process environment, so inside a Jail: its lock keeps other tests' variables
        // out, and the cleared environment keeps the caller's out.
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            let figment = Figment::new()
                .merge(Settings::environment())
                .merge(figment::providers::Serialized::default("listen.core", "nonsense"));
            let err = Settings::from_figment(figment).expect_err("must fail");
            assert!(err.key.starts_with("listen.core"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_vault_source_needs_an_address_safe_for_secrets_and_its_login_files() {
        let vault = "[secrets]\nsource = \"vault\"\n[secrets.vault]\n";
        let error = from_toml(vault).expect_err("no address");
        assert_eq!(error.key, "secrets.vault.address");
        let plain = format!("{vault}address = \"http://vault.example:8200\"\n");
        let error = from_toml(&plain).expect_err("plain http off loopback");
        assert_eq!(error.key, "secrets.vault.address");
        let local = format!("{vault}address = \"http://127.0.0.1:8200\"\n");
        assert_eq!(
            from_toml(&local).expect_err("jwt without a role").key,
            "secrets.vault.role"
        );
        let approle = format!("{local}login = \"approle\"\nrole_id_file = \"/run/role-id\"\n");
        let error = from_toml(&approle).expect_err("approle without its secret id");
        assert_eq!(error.key, "secrets.vault.secret_id_file");
        assert!(error.message.contains("login = \"approle\""), "{error}");
        let settings = from_toml(&format!("{approle}secret_id_file = \"/run/secret-id\"\n")).expect("complete");
        assert_eq!(settings.secrets.vault.login, VaultLoginMethod::AppRole);
        let stale = format!("{local}login = \"token\"\ntoken_file = \"/run/token\"\nmax_stale_secs = 30\n");
        assert_eq!(
            from_toml(&stale).expect_err("stale shorter than refresh").key,
            "secrets.vault.max_stale_secs"
        );
        // The platform's own store needs none of it.
        from_toml("[secrets.vault]\naddress = \"http://vault.example\"\n").expect("vault settings unused");
    }

    #[test]
    fn a_transit_signer_needs_the_vault_connection_and_a_plain_mount_and_key() {
        let defaults = from_toml("").expect("defaults");
        assert_eq!(defaults.tokens.signer, TokenSigner::Platform);
        assert_eq!(defaults.tokens.transit.mount, "transit");
        assert_eq!(defaults.tokens.transit.key, "rampart-access-token");
        let transit = "[tokens]\nsigner = \"transit\"\n";
        assert_eq!(
            from_toml(transit).expect_err("no Vault address").key,
            "secrets.vault.address"
        );
        let vault =
            "[secrets.vault]\naddress = \"http://127.0.0.1:8200\"\nlogin = \"token\"\ntoken_file = \"/run/t\"\n";
        let settings = from_toml(&format!("{transit}{vault}")).expect("complete, with the defaults");
        assert_eq!(settings.tokens.signer, TokenSigner::Transit);
        assert_eq!(
            settings.secrets.source,
            SecretsSource::Platform,
            "secrets may stay elsewhere"
        );
        for (key, bad) in [
            ("mount", "../sys"),
            ("mount", "/transit"),
            ("mount", "transit/"),
            ("mount", ""),
            ("key", "a/b"),
            ("key", "-key"),
            ("key", "key:v1"),
            ("key", ""),
        ] {
            let toml = format!("{transit}transit.{key} = \"{bad}\"\n{vault}");
            assert_eq!(
                from_toml(&toml).expect_err(bad).key,
                format!("tokens.transit.{key}"),
                "{bad}"
            );
        }
        let toml = format!("{transit}transit.mount = \"team-a/transit\"\ntransit.key = \"tokens.v2\"\n{vault}");
        from_toml(&toml).expect("nested mount, dotted key name");
    }

    #[test]
    fn unknown_key_is_rejected_by_name() {
        let err = from_toml("[listen]\nproxi = \"127.0.0.1:1\"").expect_err("must fail");
        assert!(err.to_string().contains("proxi"), "{err}");
    }

    /// A binary's own arguments from the environment (`RAMPART_PROXY_ROUTES`, `RAMPART_CONFIG`)
    /// are not settings and do not stop loading; any other unknown `RAMPART_*` variable does.
    #[test]
    // The closure's type is figment's: `Jail` takes one returning its large `figment::Error`.
    #[allow(clippy::result_large_err)]
    fn the_environment_loads_past_binary_arguments_but_not_unknown_variables() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file("settings.toml", "resource_prefix = \"rampart-test\"")?;
            jail.set_env(CONFIG_FILE_ENV, "settings.toml");
            jail.set_env(PROXY_ROUTES_ENV, "/etc/rampart/routes/routes.toml");
            jail.set_env("RAMPART_LISTEN__CORE", "127.0.0.1:8443");
            let settings = Settings::load(None).map_err(|e| e.to_string())?;
            assert_eq!(settings.resource_prefix, "rampart-test");
            assert_eq!(settings.listen.core.port(), 8443);

            jail.set_env("RAMPART_PROXY_ROUTE", "/etc/rampart/routes/routes.toml");
            let error = Settings::load(None).expect_err("a misspelt variable is refused");
            assert!(error.to_string().contains("proxy_route"), "{error}");
            Ok(())
        });
    }

    #[test]
    fn access_token_lifetime_is_capped_at_fifteen_minutes() {
        let err = from_toml("[tokens]\naccess_token_ttl_secs = 901").expect_err("must fail");
        assert_eq!(err.key, "tokens.access_token_ttl_secs");
    }

    #[test]
    fn the_data_directory_is_created_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().expect("tempdir");
        let settings = Settings {
            data_dir: parent.path().join("fresh"),
            ..Settings::default()
        };
        let file = settings.data_file("store.sqlite").expect("data file");
        assert_eq!(file, parent.path().join("fresh/store.sqlite"));
        let mode = std::fs::metadata(parent.path().join("fresh"))
            .expect("dir")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn audit_retention_is_bounded() {
        for days in [0, 3651] {
            let err = from_toml(&format!("[audit]\nretention_days = {days}")).expect_err("must fail");
            assert_eq!(err.key, "audit.retention_days");
        }
        assert_eq!(
            from_toml("[audit]\nretention_days = 7")
                .expect("valid")
                .audit
                .retention_days,
            7
        );
    }

    #[test]
    fn idle_timeout_may_not_outlast_the_session() {
        let err =
            from_toml("[sessions]\nidle_timeout_secs = 90000\nabsolute_lifetime_secs = 86400").expect_err("must fail");
        assert_eq!(err.key, "sessions.idle_timeout_secs");
    }

    #[test]
    fn the_mail_answer_floor_stays_inside_the_request_timeout() {
        assert_eq!(from_toml("").expect("defaults").mail.answer_floor_ms, 500);
        let err = from_toml("http.request_timeout_secs = 2\nmail.answer_floor_ms = 2000").expect_err("must fail");
        assert_eq!(err.key, "mail.answer_floor_ms");
        from_toml("http.request_timeout_secs = 2\nmail.answer_floor_ms = 1999").expect("valid");
    }

    #[test]
    fn wildcard_cors_origin_is_rejected() {
        let err = from_toml("[http]\ncors_allowed_origins = [\"*\"]").expect_err("must fail");
        assert_eq!(err.key, "http.cors_allowed_origins");
    }

    #[test]
    fn resource_prefix_is_checked() {
        let err = from_toml("resource_prefix = \"Bad_Prefix\"").expect_err("must fail");
        assert_eq!(err.key, "resource_prefix");
    }

    #[test]
    fn required_aws_setting_names_its_environment_variable() {
        let err = Settings::require_aws(&None, "aws.user_pool_id").expect_err("missing");
        assert!(err.to_string().contains("RAMPART_AWS__USER_POOL_ID"), "{err}");
    }

    #[test]
    fn later_sources_override_earlier_ones() {
        let figment = Figment::from(Serialized::defaults(Settings::default())).merge(Toml::string("backend = \"aws\""));
        assert_eq!(Settings::from_figment(figment).expect("valid").backend, Backend::Aws);
    }
}
