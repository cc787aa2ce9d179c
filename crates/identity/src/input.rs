//! Validated inputs: once constructed, an [`Email`] or [`Password`] satisfies the policy.

use secrecy::{ExposeSecret, SecretString};
use unicode_normalization::UnicodeNormalization;

/// NIST SP 800-63B: at least 12 characters (we require more than its 8), at most 128.
pub const PASSWORD_MIN_CHARS: usize = 12;
pub const PASSWORD_MAX_CHARS: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("must be a valid email address")]
    InvalidEmail,
    #[error("must not be empty")]
    PasswordEmpty,
    #[error("must be at least {PASSWORD_MIN_CHARS} characters")]
    PasswordTooShort,
    #[error("must be at most {PASSWORD_MAX_CHARS} characters")]
    PasswordTooLong,
    #[error("is too common; choose a password that is not on public password lists")]
    PasswordTooCommon,
}

/// The shipped block list (see its header), sorted, one password per line.
const COMMON_PASSWORDS: &str = include_str!("../data/common-passwords.txt");

/// Whether `normalized` (NFKC) is on the block list, ignoring case.
fn is_common(normalized: &str) -> bool {
    static LIST: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    let list = LIST.get_or_init(|| COMMON_PASSWORDS.lines().filter(|l| !l.starts_with('#')).collect());
    list.binary_search(&normalized.to_lowercase().as_str()).is_ok()
}

/// A syntactically valid email address, trimmed and lower-cased (the login name).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        let email = raw.trim().to_lowercase();
        let (local, domain) = email.rsplit_once('@').ok_or(InputError::InvalidEmail)?;
        let valid = email.len() <= 254
            && (1..=64).contains(&local.len())
            && !local.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if valid {
            Ok(Self(email))
        } else {
            Err(InputError::InvalidEmail)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password in Unicode NFKC form (so the same password typed on different keyboards matches),
/// within the length policy. Redacted in `Debug`, zeroized on drop.
#[derive(Debug, Clone)]
pub struct Password(SecretString);

impl Password {
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        let normalized: String = raw.nfkc().collect();
        let chars = normalized.chars().count();
        if chars < PASSWORD_MIN_CHARS {
            return Err(InputError::PasswordTooShort);
        }
        if chars > PASSWORD_MAX_CHARS {
            return Err(InputError::PasswordTooLong);
        }
        if is_common(&normalized) {
            return Err(InputError::PasswordTooCommon);
        }
        Ok(Self(SecretString::from(normalized)))
    }

    /// A password offered at sign-in or as the current password: normalised and bounded, but
    /// not held to the policy for new passwords, which may have changed since it was set.
    pub fn for_sign_in(raw: &str) -> Result<Self, InputError> {
        let normalized: String = raw.nfkc().collect();
        match normalized.chars().count() {
            0 => Err(InputError::PasswordEmpty),
            n if n > PASSWORD_MAX_CHARS => Err(InputError::PasswordTooLong),
            _ => Ok(Self(SecretString::from(normalized))),
        }
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_normalised_and_checked() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").expect("valid").as_str(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a da@example.com",
            "ada@.com",
        ] {
            assert_eq!(Email::parse(bad), Err(InputError::InvalidEmail), "{bad:?}");
        }
    }

    #[test]
    fn password_length_counts_characters_after_normalisation() {
        assert_eq!(Password::parse("short").err(), Some(InputError::PasswordTooShort));
        assert!(Password::parse("correct horse battery").is_ok());
        // Characters count, not bytes: eleven two-byte characters (22 bytes) are too few, and
        // 128 of them (256 bytes) are not too many.
        assert_eq!(
            Password::parse(&"ж".repeat(11)).err(),
            Some(InputError::PasswordTooShort)
        );
        assert!(Password::parse(&"жёлтый".repeat(22).chars().take(128).collect::<String>()).is_ok());
        assert_eq!(
            Password::for_sign_in(&"ж".repeat(128)).map(|p| p.expose().len()).ok(),
            Some(256)
        );
        assert_eq!(
            Password::parse(&"x".repeat(129)).err(),
            Some(InputError::PasswordTooLong)
        );
        // NFKC folds the full-width form into ASCII.
        assert_eq!(
            Password::parse("ｖｉｏｌｅｔ　ｋｅｔｔｌｅ").expect("valid").expose(),
            "violet kettle"
        );
    }

    #[test]
    fn common_passwords_are_refused_in_any_case() {
        for common in [
            "qwerty123456",
            "QWERTY123456",
            "1q2w3e4r5t6y",
            "ｑｗｅｒｔｙ１２３４５６",
        ] {
            assert_eq!(
                Password::parse(common).err(),
                Some(InputError::PasswordTooCommon),
                "{common}"
            );
        }
        assert!(Password::parse("violet kettle harbour").is_ok());
    }

    #[test]
    fn block_list_is_sorted_for_binary_search() {
        let list: Vec<&str> = COMMON_PASSWORDS.lines().filter(|l| !l.starts_with('#')).collect();
        assert!(list.len() > 40_000);
        assert!(list.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn password_debug_is_redacted() {
        let password = Password::parse("correct horse battery").expect("valid");
        assert!(!format!("{password:?}").contains("horse"));
    }
}
