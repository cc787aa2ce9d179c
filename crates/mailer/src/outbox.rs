//! The embedded platform's mail: one line per message appended to `outbox.log` in the data
//! directory (0600), where a developer reads codes and notices instead of an inbox.

use std::io::Write;
use std::path::{Path, PathBuf};

use secrecy::ExposeSecret;
use secrecy::zeroize::Zeroizing;

use crate::{CodeMail, MailError, Mailer, Notice};

/// The outbox file in the data directory.
pub const OUTBOX_FILE: &str = "outbox.log";

/// Appends `line` to the outbox at `path`, creating it owner-only (0600).
pub fn append(path: &Path, line: &str) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(line.as_bytes())
}

/// "Sends" mail as one line each: `<unix time> to=<email> purpose=<notice label>
/// subject=<subject>` for a notice, `<unix time> to=<email> purpose=<code purpose> code=<code>
/// valid_for=<seconds>s` for a code.
#[derive(Debug, Clone)]
pub struct OutboxMailer {
    path: PathBuf,
}

impl OutboxMailer {
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `<unix time> to=<to> <rest>` on the blocking pool.
    async fn write(&self, to: &str, rest: &str) -> Result<(), MailError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let line = Zeroizing::new(format!("{now} to={to} {rest}\n"));
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || append(&path, &line))
            .await
            .map_err(|e| MailError::Unavailable(e.to_string()))?
            .map_err(|e| MailError::Unavailable(e.to_string()))
    }
}

#[async_trait::async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, to: &str, notice: Notice) -> Result<(), MailError> {
        self.write(to, &format!("purpose={} subject={}", notice.label(), notice.subject()))
            .await
    }

    async fn send_code(&self, to: &str, mail: &CodeMail) -> Result<(), MailError> {
        let rest = Zeroizing::new(format!(
            "purpose={} code={} valid_for={}s",
            mail.purpose.label(),
            mail.code.expose_secret(),
            mail.valid_for_secs
        ));
        self.write(to, &rest).await
    }
}
