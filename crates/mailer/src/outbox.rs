//! The embedded platform's mail: one line per message appended to `outbox.log` in the data
//! directory (0600), where a developer reads codes and notices instead of an inbox.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{MailError, Mailer, Notice};

/// The outbox file in the data directory, shared with the embedded identity's codes.
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

/// "Sends" notices as `<unix time> to=<email> purpose=<notice label> subject=<subject>` lines.
#[derive(Debug, Clone)]
pub struct OutboxMailer {
    path: PathBuf,
}

impl OutboxMailer {
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }
}

#[async_trait::async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, to: &str, notice: Notice) -> Result<(), MailError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let line = format!(
            "{now} to={to} purpose={} subject={}\n",
            notice.label(),
            notice.subject()
        );
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || append(&path, &line))
            .await
            .map_err(|e| MailError::Unavailable(e.to_string()))?
            .map_err(|e| MailError::Unavailable(e.to_string()))
    }
}
