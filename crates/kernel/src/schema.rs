//! The platform schema (`schema/platform.json`): the one list of resource names, and of the user
//! pool's settings, that Rust and Terraform both read, so neither can drift from the other.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::Deserialize;

const PLATFORM_JSON: &str = include_str!("../../../schema/platform.json");

#[derive(Debug, Deserialize)]
pub struct Schema {
    pub resource_prefix: PatternDef,
    pub tables: BTreeMap<String, TableDef>,
    pub kms_keys: BTreeMap<String, KmsKeyDef>,
    pub user_pool: UserPoolDef,
    pub secrets: BTreeMap<String, SecretDef>,
    pub environment: BTreeMap<String, String>,
}

/// A rule on a name, as a regular expression both Rust and Terraform (RE2) read alike.
#[derive(Debug, Deserialize)]
pub struct PatternDef {
    pub pattern: String,
    /// The rule in words, for error messages.
    pub description: String,
}

#[derive(Debug, Deserialize)]
pub struct TableDef {
    pub purpose: String,
    pub hash_key: String,
    pub range_key: String,
    pub ttl_attribute: Option<String>,
    pub global_secondary_indexes: BTreeMap<String, IndexDef>,
    pub stream: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct IndexDef {
    pub hash_key: String,
    pub range_key: String,
}

#[derive(Debug, Deserialize)]
pub struct KmsKeyDef {
    pub purpose: String,
    pub key_spec: String,
    pub key_usage: String,
}

/// The Cognito user pool and its app client. Enumerations are Cognito's own spellings (e.g.
/// `mfa` is `OFF`, `ON` or `OPTIONAL`), so every reader passes them through unchanged.
#[derive(Debug, Deserialize)]
pub struct UserPoolDef {
    pub name: String,
    /// What users sign in with instead of a username: `email` and/or `phone_number`.
    pub username_attributes: Vec<String>,
    pub username_case_sensitive: bool,
    pub password_minimum_length: u32,
    pub password_require_lowercase: bool,
    pub password_require_uppercase: bool,
    pub password_require_numbers: bool,
    pub password_require_symbols: bool,
    pub temporary_password_validity_days: u32,
    pub mfa: String,
    /// `admin_only`, `verified_email`, `verified_phone_number`, in order of priority (1 first).
    pub account_recovery_mechanisms: Vec<String>,
    pub client_name: String,
    pub generate_client_secret: bool,
    pub explicit_auth_flows: Vec<String>,
    /// `ENABLED` or `LEGACY`.
    pub prevent_user_existence_errors: String,
    pub enable_token_revocation: bool,
    /// Token lifetimes: these three, each in its unit of `token_validity_units`.
    pub access_token_validity: u32,
    pub id_token_validity: u32,
    pub refresh_token_validity: u32,
    pub token_validity_units: TokenValidityUnitsDef,
}

/// The unit of each token lifetime: `seconds`, `minutes`, `hours` or `days`.
#[derive(Debug, Deserialize)]
pub struct TokenValidityUnitsDef {
    pub access_token: String,
    pub id_token: String,
    pub refresh_token: String,
}

#[derive(Debug, Deserialize)]
pub struct SecretDef {
    pub purpose: String,
    /// Rampart makes the value itself (random text), on a fresh machine, in `rampart bootstrap`
    /// and in Terraform, rather than another system writing it.
    #[serde(default)]
    pub generated: bool,
}

static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    // The file is compiled in and checked by this module's tests, so this cannot fail at run time.
    #[allow(clippy::expect_used)]
    serde_json::from_str(PLATFORM_JSON).expect("schema/platform.json is valid")
});

pub fn schema() -> &'static Schema {
    &SCHEMA
}

static RESOURCE_PREFIX: LazyLock<regex::Regex> = LazyLock::new(|| {
    // Checked by this module's tests, like the file itself.
    #[allow(clippy::expect_used)]
    regex::Regex::new(&schema().resource_prefix.pattern).expect("resource_prefix.pattern is a valid regex")
});

/// Whether `prefix` follows the schema's `resource_prefix` rule, the one Terraform checks too.
pub fn is_valid_resource_prefix(prefix: &str) -> bool {
    RESOURCE_PREFIX.is_match(prefix)
}

/// `<prefix>-<name>`: tables, the user pool and its client.
pub fn resource_name(prefix: &str, name: &str) -> String {
    format!("{prefix}-{name}")
}

/// `alias/<prefix>-<name>`: KMS key aliases.
pub fn kms_alias(prefix: &str, name: &str) -> String {
    format!("alias/{prefix}-{name}")
}

/// `<prefix>/<name>`: Secrets Manager secret names.
pub fn secret_name(prefix: &str, name: &str) -> String {
    format!("{prefix}/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ENV_NESTING, ENV_PREFIX, Settings};

    #[test]
    fn the_resource_prefix_rule_is_the_schema_pattern() {
        for good in ["rampart-dev", "abc", "a1-b2", &format!("a{}", "b".repeat(39))] {
            assert!(is_valid_resource_prefix(good), "{good}");
        }
        // A trailing '-' (once accepted here, always refused by Terraform), too short or long,
        // upper case, a leading digit or '-', other characters, and a newline smuggled after a
        // valid prefix.
        for bad in [
            "rampart-",
            "ab",
            &format!("a{}", "b".repeat(40)),
            "Rampart",
            "1abc",
            "-abc",
            "ram_part",
            "rampart\n",
        ] {
            assert!(!is_valid_resource_prefix(bad), "{bad:?}");
        }
    }

    #[test]
    fn schema_parses_and_names_what_the_code_uses() {
        let schema = schema();
        for table in ["auth", "audit", "core"] {
            assert!(schema.tables.contains_key(table), "{table}");
        }
        assert_eq!(schema.kms_keys["token-signing"].key_usage, "SIGN_VERIFY");
        assert!(schema.secrets.contains_key("auth/cognito-client-secret"));
    }

    #[test]
    fn every_schema_environment_variable_is_a_settings_key() {
        let defaults = serde_json::to_value(Settings::default()).expect("serialize");
        for (variable, key) in schema().environment.iter().filter(|(k, _)| !k.starts_with('$')) {
            let derived = variable
                .strip_prefix(ENV_PREFIX)
                .expect("RAMPART_ prefix")
                .split(ENV_NESTING)
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
                .join(".");
            assert_eq!(&derived, key, "{variable} must map to {key}");
            let found = key.split('.').try_fold(&defaults, |value, part| value.get(part));
            assert!(found.is_some(), "{key} is not a Settings key");
        }
    }
}
