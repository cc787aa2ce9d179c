//! Starts and stops `moto_server`, the AWS emulator the tests run against.

use std::path::PathBuf;
use std::process::Command;

use crate::server::{LocalServer, workspace_root};

/// A running `moto_server`, stopped when dropped (or when the thread that started it ends).
#[derive(Debug)]
pub struct Moto {
    server: LocalServer,
    endpoint: String,
}

/// The moto version the test command installs; see `scripts/requirements-dev.txt`.
pub const MOTO_VERSION: &str = "5.2.5";

impl Moto {
    /// The Python that has moto: `MOTO_PYTHON` if set, else the project virtualenv the test
    /// command creates (`.venv/bin/python` at the workspace root).
    pub fn python() -> PathBuf {
        if let Some(path) = std::env::var_os("MOTO_PYTHON") {
            return PathBuf::from(path);
        }
        workspace_root().join(".venv/bin/python")
    }

    /// Starts moto on a free loopback port and waits until it answers.
    pub fn start() -> Result<Self, String> {
        let python = Self::python();
        if !python.exists() {
            return Err(format!(
                "no Python with moto at {} — run the test command (scripts/test), which installs \
                 moto {MOTO_VERSION} into .venv, or set MOTO_PYTHON or AWS_ENDPOINT_URL",
                python.display()
            ));
        }
        // The launcher corrects moto where it differs from AWS (see the script's docstring).
        let launcher = workspace_root().join("scripts/moto_server.py");
        let command_on = |port: u16| {
            let mut command = Command::new(&python);
            command
                .arg(&launcher)
                // moto checks Cognito TOTP codes only when asked to.
                .env("MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP", "true")
                .args(["-H", "127.0.0.1", "-p", &port.to_string()]);
            command
        };
        let server = LocalServer::start("moto_server", command_on, |_| true)?;
        Ok(Moto {
            endpoint: format!("http://127.0.0.1:{}", server.port()),
            server,
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Stops the emulator where it stands (SIGSTOP): it keeps its connections and its state but
    /// answers nothing, as an endpoint that has gone away mid-call, until [`Moto::resume`].
    pub fn pause(&self) {
        self.server.signal(libc::SIGSTOP);
    }

    /// Lets a paused emulator run on (SIGCONT), with everything it held.
    pub fn resume(&self) {
        self.server.signal(libc::SIGCONT);
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpStream;
    use std::time::Duration;

    use super::*;

    #[test]
    fn starts_answers_and_stops() {
        let moto = Moto::start().expect("moto starts");
        let port = moto.server.port();
        assert!(TcpStream::connect(("127.0.0.1", port)).is_ok(), "moto answers");
        drop(moto);
        std::thread::sleep(Duration::from_millis(200));
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "moto stopped");
    }
}
