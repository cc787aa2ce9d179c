//! A server process a test starts on a free loopback port: moto, OpenBao.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A child process listening on a loopback port, killed when dropped (or when the thread that
/// started it ends).
#[derive(Debug)]
pub(crate) struct LocalServer {
    child: Child,
    port: u16,
}

impl LocalServer {
    /// Runs `command_on(port)` on a free port until one of them listens and `ready` (asked once
    /// the port accepts) says so. A free port can be taken between probing and binding, so a
    /// few ports are tried.
    pub(crate) fn start(
        name: &str,
        command_on: impl Fn(u16) -> Command,
        ready: impl Fn(u16) -> bool,
    ) -> Result<Self, String> {
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port()?;
            let mut command = command_on(port);
            command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
            die_with_parent(&mut command);
            let child = command.spawn().map_err(|e| format!("cannot start {name}: {e}"))?;
            let mut server = Self { child, port };
            match server.wait_ready(name, &ready) {
                Ok(()) => return Ok(server),
                Err(error) => last_error = error,
            }
        }
        Err(format!("{name} did not start: {last_error}"))
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Sends `signal` to the server (SIGSTOP, SIGCONT). After SIGSTOP, returns once every
    /// thread of the server is stopped: kill(2) returns before a thread running on another core
    /// has stopped, and a request sent in between could still be answered.
    #[allow(unsafe_code)]
    pub(crate) fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("a pid");
        // SAFETY: kill(2) on our own child's pid touches no memory of ours.
        let sent = unsafe { libc::kill(pid, signal) };
        assert_eq!(sent, 0, "signal {signal}: {}", std::io::Error::last_os_error());
        if signal == libc::SIGSTOP {
            let deadline = Instant::now() + Duration::from_secs(5);
            while !all_threads_stopped(self.child.id()) {
                assert!(Instant::now() < deadline, "the server did not stop within 5 s");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    fn wait_ready(&mut self, name: &str, ready: &impl Fn(u16) -> bool) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("{name} exited with {status}"));
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() && ready(self.port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("{name} was not ready within 60 s"))
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What `start` made, started once for this process from a thread that lives as long as the
/// process: the servers are told to exit when the thread that started them ends. Panics, saying
/// why, if it cannot start.
pub(crate) fn once_per_process<S, D>(
    cell: &'static OnceLock<D>,
    start: fn() -> Result<S, String>,
    describe: fn(&S) -> D,
) -> D
where
    S: 'static,
    D: Clone + Send + Sync + 'static,
{
    cell.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || match start() {
            Ok(server) => {
                let _ = tx.send(Ok(describe(&server)));
                let _keep_running = server;
                loop {
                    std::thread::park();
                }
            }
            Err(error) => {
                let _ = tx.send(Err(error));
            }
        });
        match rx.recv() {
            Ok(Ok(described)) => described,
            Ok(Err(error)) => panic!("{error}"),
            Err(_) => panic!("the server launcher thread died"),
        }
    })
    .clone()
}

pub(crate) fn workspace_root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// Asks Linux to kill the server when the thread that started it ends, so an aborted test run
/// leaves nothing behind.
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

/// Whether every thread of `pid` is stopped (state `T` in /proc/<pid>/task/<tid>/stat).
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|task| {
        std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
            // `pid (comm) state ...`: comm may hold spaces and parentheses, the state follows
            // the last `)`.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next())
                .is_some_and(|state| state == 'T' || state == 't')
        })
    })
}
