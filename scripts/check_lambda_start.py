#!/usr/bin/env python3
"""The Lambda zips' size, and the auth function's cold start: process start to first answer.

Usage: check_lambda_start.py [--mode size|direct|watch|both] [--lambda-dir DIR] [--runs N]
                             [--watch-runs N] [--watch-profile dev|release]

Fails (exit 1, with the reason) when a zip under DIR is over 8 MB (8,000,000 bytes), when the
auth function does not answer its first API Gateway event, or answers it with anything but the
JWKS. The 20 ms cold-start target is printed, never enforced: timings belong in
docs/performance.md, not in a pass/fail check on a shared machine.

The function runs on the embedded backend (RAMPART_DATA_DIR, a fresh temporary directory): it
needs no AWS account. The event is crates/testkit/events/http-api-jwks.json, the HTTP API
(payload 2.0) event the auth tests use, for GET /.well-known/jwks.json.

- size: the zips' sizes only (for zips this machine cannot run, e.g. arm64 ones on x86_64).
- direct: the `bootstrap` from DIR/rampart-auth/bootstrap.zip, as Lambda runs it, against the
  Lambda Runtime API served here (GET /2018-06-01/runtime/invocation/next gives the event,
  POST .../{id}/response takes the answer). Start: the instant before the process is spawned
  (fork and exec, about a millisecond, are counted). First answer: the instant the response
  body has been read. Both on this process's monotonic clock.
- watch: `cargo lambda watch` (a local Lambda runtime that builds and runs the function with
  `cargo run`) and one invoke through its invoke URL. Cargo runs the binary through a runner
  (this script with --stamp) that records CLOCK_MONOTONIC and then exec()s the binary in the
  same process: that instant is the function process's start, not watch's nor cargo's. First
  answer: the instant this script has read the invoke's response (watch relays it: an upper
  bound). The binary is built before watch starts, so no compile time is counted. The dev
  profile by default: the test command has built it already, and a release build for the host
  is a second full build beside the zips' (a different target and profile); --watch-profile
  release on a machine with the time and disk for it.

Each mode first runs once on an empty data directory (the embedded backend then creates its
signing key and secrets, which on AWS exist beforehand); that run is shown apart, and the
measured runs reuse the data directory it filled.
"""

import argparse
import base64
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVENT = ROOT / "crates/testkit/events/http-api-jwks.json"
PACKAGE, BINARY = "rampart-auth-function", "rampart-auth"
MAX_ZIP_BYTES = 8_000_000
TARGET_MS = 20.0
ANSWER_TIMEOUT_S = 30.0
REQUEST_ID = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"
NEXT = "/2018-06-01/runtime/invocation/next"


class Failure(Exception):
    pass


def now_ns() -> int:
    # CLOCK_MONOTONIC: one clock for every process on the machine (the --stamp runner uses it too).
    return time.monotonic_ns()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_answer(payload: bytes) -> None:
    """The answer must be API Gateway's response to the JWKS request: 200 and an RSA key."""
    try:
        response = json.loads(payload)
        body = response.get("body") or ""
        if response.get("isBase64Encoded"):
            body = base64.b64decode(body).decode()
        ok = response.get("statusCode") == 200 and json.loads(body)["keys"][0]["kty"] in ("RSA", "EC")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        ok = False
    if not ok:
        raise Failure(f"the auth function did not answer with the JWKS: {payload[:500]!r}")


# ---- sizes -------------------------------------------------------------------------------------


def check_zips(lambda_dir: Path) -> Path:
    zips = sorted(lambda_dir.glob("*/bootstrap.zip"))
    if not zips:
        raise Failure(f"no */bootstrap.zip under {lambda_dir}: run scripts/build-lambdas first")
    print(f"zips in {lambda_dir} (limit {MAX_ZIP_BYTES:,} bytes):")
    over = []
    for path in zips:
        size = path.stat().st_size
        print(f"  {path.parent.name:<24} {size:>10,} bytes")
        if size > MAX_ZIP_BYTES:
            over.append(f"{path.parent.name} ({size:,} bytes)")
    if over:
        raise Failure(f"zip over {MAX_ZIP_BYTES:,} bytes: {', '.join(over)}")
    auth = lambda_dir / BINARY / "bootstrap.zip"
    if not auth.is_file():
        raise Failure(f"no {auth}")
    return auth


# ---- direct: the bootstrap against a Lambda Runtime API served here ----------------------------


class RuntimeApi(ThreadingHTTPServer):
    """Serves one invocation of `event`, records when it was taken and answered."""

    daemon_threads = True

    def __init__(self, event: bytes):
        super().__init__(("127.0.0.1", 0), RuntimeHandler)
        self.event = event
        self.taken_ns: int | None = None
        self.answered_ns: int | None = None
        self.answer: bytes | None = None
        self.error: str | None = None
        self.done = threading.Event()
        self.closing = threading.Event()
        self.lock = threading.Lock()

    def handle_error(self, request, client_address) -> None:
        # The function is killed while its next poll is held: a reset connection is expected.
        if not isinstance(sys.exc_info()[1], (ConnectionError, BrokenPipeError)):
            super().handle_error(request, client_address)


class RuntimeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # the runtime client keeps its connection alive
    server: RuntimeApi

    def log_message(self, *args) -> None:
        pass

    def reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def do_GET(self) -> None:
        api = self.server
        if self.path != NEXT:
            return self.reply(404, b'{"errorMessage":"unknown path"}')
        with api.lock:
            first = api.taken_ns is None
            if first:
                api.taken_ns = now_ns()
        if not first:
            # A second poll is the function idling after its answer: hold it, as Lambda does.
            api.closing.wait()
            self.close_connection = True
            return
        deadline_ms = int(time.time() * 1000) + 30_000
        self.reply(200, api.event, {
            "Lambda-Runtime-Aws-Request-Id": REQUEST_ID,
            "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": f"arn:aws:lambda:eu-west-1:123456789012:function:{BINARY}",
            "Lambda-Runtime-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        })

    def do_POST(self) -> None:
        api = self.server
        body = self.read_body()
        at = now_ns()
        if self.path == f"/2018-06-01/runtime/invocation/{REQUEST_ID}/response":
            api.answered_ns, api.answer = at, body
        elif self.path.endswith("/error"):
            api.error = f"{self.path}: {body[:500]!r}"
        else:
            return self.reply(404, b'{"errorMessage":"unknown path"}')
        self.reply(202, b'{"status":"OK"}')
        api.done.set()


def extract_bootstrap(zip_path: Path, into: Path) -> Path:
    with zipfile.ZipFile(zip_path) as archive:
        archive.extract("bootstrap", into)
    bootstrap = into / "bootstrap"
    bootstrap.chmod(0o755)
    return bootstrap


def lambda_environment(data_dir: Path) -> dict[str, str]:
    """What Lambda sets for a function, plus the embedded backend's data directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAMPART_", "AWS_"))}
    env.update({
        "AWS_LAMBDA_FUNCTION_NAME": BINARY,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{BINARY}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "cold-start-check",
        "AWS_REGION": "eu-west-1",
        "RAMPART_BACKEND": "embedded",
        "RAMPART_DATA_DIR": str(data_dir),
    })
    return env


def run_direct(bootstrap: Path, data_dir: Path, event: bytes, log: Path) -> dict[str, float]:
    api = RuntimeApi(event)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    env = lambda_environment(data_dir)
    env["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{api.server_address[1]}"
    with open(log, "ab") as out:
        start = now_ns()
        process = subprocess.Popen([str(bootstrap)], env=env, cwd=bootstrap.parent,
                                   stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        spawned = now_ns()
    try:
        deadline = time.monotonic() + ANSWER_TIMEOUT_S
        while not api.done.wait(0.01):
            # WNOWAIT: left for reap() below, which reads its CPU time.
            ended = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if ended:
                raise Failure(f"the auth function exited (status {ended.si_status}) before answering")
            if time.monotonic() > deadline:
                raise Failure(f"the auth function did not answer within {ANSWER_TIMEOUT_S:.0f} s")
        if api.error:
            raise Failure(f"the auth function reported an error: {api.error}")
        check_answer(api.answer or b"")
        result = {
            "answer_ms": (api.answered_ns - start) / 1e6,
            "init_ms": (api.taken_ns - start) / 1e6,
            "spawn_ms": (spawned - start) / 1e6,
        }
    finally:
        cpu_ms = reap(process)
        api.closing.set()
        api.shutdown()
        api.server_close()
    # Less sensitive than the wall clock to other work on the machine; the function idles in its
    # next poll after answering, so this is about the CPU its cold start took (all threads).
    result["cpu_ms"] = cpu_ms
    return result


def reap(process: subprocess.Popen) -> float:
    """Stops the process (SIGTERM, SIGKILL after 5 s); returns the CPU time it used, in ms."""
    # os.kill, not Popen.terminate: that would reap the process first and lose its CPU time.
    # The pid is still ours to signal: nothing has reaped it yet.
    os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return (usage.ru_utime + usage.ru_stime) * 1000
        if time.monotonic() > deadline:
            os.kill(process.pid, signal.SIGKILL)
        time.sleep(0.005)


# ---- watch: cargo lambda watch -----------------------------------------------------------------


def tool_env() -> dict[str, str]:
    venv = Path(os.environ.get("VENV", ROOT / ".venv"))
    if not venv.is_absolute():
        venv = ROOT / venv
    # As in lambda_environment: no RAMPART_* or AWS_* setting of the caller's reaches the function.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAMPART_", "AWS_"))}
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", "")])
    # The same flags as a plain `cargo build`, so the binary built below is the one watch runs.
    for name in ("RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS"):
        env.pop(name, None)
    return env


def host_triple() -> str:
    out = subprocess.run(["rustc", "-vV"], check=True, capture_output=True, text=True).stdout
    return next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("host: "))


def build_for_watch(profile: str, env: dict[str, str]) -> None:
    command = ["cargo", "build", "--locked", "--package", PACKAGE, "--bin", BINARY]
    if profile == "release":
        command.append("--release")
    print("+ " + " ".join(command), flush=True)
    subprocess.run(command, cwd=ROOT, env=env, check=True)


def run_watch(profile: str, runner: str, data_dir: Path, event: bytes, log: Path, env: dict[str, str]) -> dict[str, float]:
    port = free_port()
    stamp = data_dir.parent / f"stamp-{port}"
    stamp.unlink(missing_ok=True)
    command = ["cargo", "lambda", "watch", "--locked", "--package", PACKAGE, "--bin", BINARY,
               "--invoke-address", "127.0.0.1", "--invoke-port", str(port), "--ignore-changes",
               "--env-var", f"RAMPART_DATA_DIR={data_dir}", "--env-var", "RAMPART_BACKEND=embedded",
               "--config", f"{runner}=[{json.dumps(sys.executable)}, {json.dumps(str(Path(__file__).resolve()))}, "
                           f"\"--stamp\", {json.dumps(str(stamp))}]"]
    if profile == "release":
        command.append("--release")
    with open(log, "ab") as out:
        # A session of its own, so the whole tree (watch, cargo run, the function) is stopped below.
        watch = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                 stdout=out, stderr=out, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if watch.poll() is not None:
                    raise Failure(f"cargo lambda watch exited with status {watch.returncode}")
                if time.monotonic() > deadline:
                    raise Failure("cargo lambda watch did not listen within 120 s")
                time.sleep(0.05)
        if stamp.exists():
            raise Failure("the function started before it was invoked: its start would not be a cold start")
        url = f"http://127.0.0.1:{port}/2015-03-31/functions/{BINARY}/invocations"
        request = urllib.request.Request(url, data=event, method="POST",
                                         headers={"Content-Type": "application/json"})
        invoked = now_ns()
        try:
            # `cargo run` may first wait for the target directory's lock: generous.
            with urllib.request.urlopen(request, timeout=ANSWER_TIMEOUT_S + 270) as response:
                payload = response.read()
        except OSError as error:
            raise Failure(f"no answer through cargo lambda watch: {error}") from error
        answered = now_ns()
        check_answer(payload)
        if not stamp.exists():
            raise Failure("the runner left no start time: did cargo run the function through it?")
        started = int(stamp.read_text().split()[0])
        return {"answer_ms": (answered - started) / 1e6, "invoke_ms": (answered - invoked) / 1e6}
    finally:
        try:
            os.killpg(watch.pid, signal.SIGTERM)
            watch.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(watch.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            watch.wait()


def stamp_and_exec(argv: list[str]) -> None:
    """Cargo's runner: record this process's start of the function, then become the function."""
    stamp, binary, rest = argv[0], argv[1], argv[2:]
    Path(stamp).write_text(f"{now_ns()}\n")
    os.execv(binary, [binary, *rest])


# ---- report ------------------------------------------------------------------------------------


def summarise(name: str, first: dict[str, float], runs: list[dict[str, float]], *extras: str) -> None:
    answers = [run["answer_ms"] for run in runs]
    median = statistics.median(answers)
    print(f"\n{name}: process start -> first answer, ms")
    print(f"  first start, empty data dir: {first['answer_ms']:.1f}")
    print(f"  {len(runs)} cold starts: " + ", ".join(f"{a:.1f}" for a in answers))
    print(f"  median {median:.1f}, min {min(answers):.1f}, max {max(answers):.1f}")
    for extra in extras:
        values = [run[extra] for run in runs]
        print(f"  {extra} median {statistics.median(values):.1f} (" + ", ".join(f"{v:.1f}" for v in values) + ")")
    verdict = "met" if median <= TARGET_MS else "NOT met"
    print(f"  target <= {TARGET_MS:.0f} ms (median): {verdict}; not enforced here")


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--stamp":
        return stamp_and_exec(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("size", "direct", "watch", "both"), default="both")
    arch = "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"
    target = ROOT / os.environ.get("CARGO_TARGET_DIR", "target")  # an absolute one replaces ROOT
    parser.add_argument("--lambda-dir", type=Path, default=target / "lambda" / arch,
                        help="scripts/build-lambdas --out (default: target/lambda/<this machine's arch>)")
    parser.add_argument("--runs", type=int, default=11, help="measured cold starts, direct mode")
    parser.add_argument("--watch-runs", type=int, default=5, help="measured cold starts under cargo lambda watch")
    parser.add_argument("--watch-profile", choices=("dev", "release"), default="dev")
    args = parser.parse_args()

    event = EVENT.read_bytes()
    auth_zip = check_zips(args.lambda_dir)
    if args.mode == "size":
        return
    with tempfile.TemporaryDirectory(prefix="lambda-start-") as tmp:
        tmp_path = Path(tmp)
        log = tmp_path / "function.log"
        try:
            print(f"load average before the runs: {os.getloadavg()[0]:.2f} (nproc {os.cpu_count()})")
            if args.mode in ("direct", "both"):
                bootstrap = extract_bootstrap(auth_zip, tmp_path / "direct")
                data_dir = tmp_path / "direct-data"
                first = run_direct(bootstrap, data_dir, event, log)
                runs = [run_direct(bootstrap, data_dir, event, log) for _ in range(args.runs)]
                summarise(f"direct ({auth_zip}, Runtime API served by this script)", first, runs, "init_ms", "cpu_ms")
            if args.mode in ("watch", "both"):
                env = tool_env()
                build_for_watch(args.watch_profile, env)
                runner = f"target.{host_triple()}.runner"
                data_dir = tmp_path / "watch-data"
                first = run_watch(args.watch_profile, runner, data_dir, event, log, env)
                runs = [run_watch(args.watch_profile, runner, data_dir, event, log, env)
                        for _ in range(args.watch_runs)]
                summarise(f"cargo lambda watch (--{args.watch_profile} build of {BINARY})", first, runs, "invoke_ms")
        except Failure:
            if log.exists():
                sys.stderr.write("---- function and watch output ----\n" + log.read_text(errors="replace")[-4000:])
            raise


if __name__ == "__main__":
    try:
        main()
    except Failure as failure:
        print(f"check_lambda_start: FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
    except subprocess.CalledProcessError as error:
        print(f"check_lambda_start: FAILED: `{' '.join(error.cmd)}` exited with status {error.returncode}", file=sys.stderr)
        sys.exit(1)
