//! Starts and stops `moto_server`, the AWS emulator the tests run against.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `moto_server`, stopped when dropped (or when the thread that started it ends).
#[derive(Debug)]
pub struct Moto {
    child: Child,
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
        let mut last_error = String::new();
        // A free port can be taken between probing and binding; try a few.
        for _ in 0..5 {
            let port = free_port()?;
            let mut command = Command::new(&python);
            command
                .arg(&launcher)
                // moto checks Cognito TOTP codes only when asked to.
                .env("MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP", "true")
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            die_with_parent(&mut command);
            let child = command
                .spawn()
                .map_err(|e| format!("cannot start {}: {e}", python.display()))?;
            let mut moto = Moto {
                child,
                endpoint: format!("http://127.0.0.1:{port}"),
            };
            match moto.wait_ready(port) {
                Ok(()) => return Ok(moto),
                Err(error) => last_error = error,
            }
        }
        Err(format!("moto_server did not start: {last_error}"))
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Stops the emulator where it stands (SIGSTOP): it keeps its connections and its state but
    /// answers nothing, as an endpoint that has gone away mid-call, until [`Moto::resume`].
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Lets a paused emulator run on (SIGCONT), with everything it held.
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    #[allow(unsafe_code)]
    fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("a pid");
        // SAFETY: kill(2) on our own child's pid touches no memory of ours.
        let sent = unsafe { libc::kill(pid, signal) };
        assert_eq!(sent, 0, "signal {signal} to moto: {}", std::io::Error::last_os_error());
    }

    fn wait_ready(&mut self, port: u16) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("moto_server exited with {status}"));
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err("moto_server did not listen within 60 s".into())
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// Asks Linux to kill moto when the thread that started it ends, so an aborted test run leaves
/// no emulator behind.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and touches no memory of ours.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut Command) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_answers_and_stops() {
        let moto = Moto::start().expect("moto starts");
        let port: u16 = moto
            .endpoint()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port");
        assert!(TcpStream::connect(("127.0.0.1", port)).is_ok(), "moto answers");
        drop(moto);
        std::thread::sleep(Duration::from_millis(200));
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "moto stopped");
    }
}
