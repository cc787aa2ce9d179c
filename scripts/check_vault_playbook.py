#!/usr/bin/env python3
"""The Ansible Vault playbook (ansible/playbooks/vault.yml) applied to a fresh OpenBao, then
used the way the services use it.

Proves that:
1. the playbook refuses, before writing anything, an OpenBao whose server configuration does not
   declare the expected audit device, and names the `audit` stanza to add;
2. applied twice to a fresh OpenBao dev server, the first run changes things and the second
   reports changed=0 and failed=0 (PLAY RECAP);
3. each service (core, auth-proxy, auth), logged in with AppRole, gets a token carrying only its
   own policy, which can look up and renew itself, read its own KV path, and nothing of another
   service's path or of sys/;
4. core and auth-proxy get one-hour EC P-256 certificates with their SPIFFE ID from their own
   role on the intermediate CA and none from another's role or with another's SPIFFE ID; the
   leaf chains to the intermediate and the intermediate to the root (path validation by
   `cryptography`), and the root has no roles;
5. auth signs with the Transit key (the signature verifies as an RS256 JWT) but cannot rotate it,
   the key is a non-exportable rsa-2048 key, and no other service can sign;
6. a JWT login as an EKS service account works for its own role and is refused with another
   service account's subject, another audience or another key;
7. the Kubernetes roles bind each service's service account in namespace rampart;
8. the audit log records core's KV read, with the secret's value HMAC'd, never in clear.

Starts its own OpenBao (`bao` from the venv) on a free loopback port with a random root token
and always stops it. Exits 0 only if every check held; prints what it checked.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from pathlib import Path

import jwt
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import DNSName, PolicyBuilder, Store, VerificationError

ROOT = Path(__file__).resolve().parent.parent
ANSIBLE_DIR = ROOT / "ansible"
BIN = Path(sys.executable).parent  # the venv's bin/: bao, ansible-playbook

SERVICES = ("core", "auth-proxy", "auth")
# The deployment's resource_prefix: the services read <mount>/data/<prefix>/<service>/<name>.
RESOURCE_PREFIX = "rampart-check"
PKI_SERVICES = ("core", "auth-proxy")
NAMESPACE = "rampart"
JWT_ISSUER = "https://oidc.eks.test.invalid/id/rampart-check"
TRANSIT_KEY = "rampart-access-token"
AUDIT_DEVICE = "file"
ONE_HOUR = datetime.timedelta(hours=1)


class CheckFailed(Exception):
    pass


def expect(condition: bool, what: str) -> None:
    """One check: raises with `what` if it does not hold, prints it if it does."""
    if not condition:
        raise CheckFailed(what)
    print(f"  ok  {what}")


# --- OpenBao ---------------------------------------------------------------------------------


class Vault:
    """Minimal HTTP client: returns (status, parsed JSON or None), never raises on 4xx/5xx."""

    def __init__(self, addr: str, token: str):
        self.addr = addr
        self.token = token

    def call(self, method: str, path: str, body: dict | None = None, token: str | None = None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.addr}/v1/{path}", data=data, method=method)
        request.add_header("X-Vault-Token", self.token if token is None else token)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        return status, (json.loads(raw) if raw.strip() else None)

    def ok(self, method: str, path: str, body: dict | None = None, token: str | None = None):
        status, answer = self.call(method, path, body, token)
        if status not in (200, 204):
            errors = (answer or {}).get("errors")
            raise CheckFailed(f"{method} {path}: expected success, got {status} {errors}")
        return answer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env() -> dict:
    """The caller's environment without any Vault/OpenBao setting that could redirect us."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}


@contextlib.contextmanager
def openbao(workdir: Path):
    """A fresh OpenBao dev server whose configuration declares the file audit device."""
    port = free_port()
    token = "root-" + secrets.token_hex(16)
    audit_log = workdir / "audit.log"
    config = workdir / "openbao.hcl"
    # OpenBao refuses audit devices over the API: they come from the server configuration,
    # which -dev merges with -config.
    config.write_text(
        f'audit "file" "{AUDIT_DEVICE}" {{\n'
        f"  options = {{\n    file_path = {json.dumps(str(audit_log))}\n  }}\n}}\n"
    )
    server_log = workdir / "openbao.log"
    with open(server_log, "wb") as log:
        process = subprocess.Popen(
            [
                str(BIN / "bao"),
                "server",
                "-dev",
                "-dev-no-store-token",
                f"-dev-root-token-id={token}",
                f"-dev-listen-address=127.0.0.1:{port}",
                f"-config={config}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=clean_env(),
            cwd=workdir,
        )
    addr = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(addr, process, server_log)
        yield Vault(addr, token), audit_log, server_log
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def redacted_log(server_log: Path) -> str:
    """The server's log without the unseal key and root token the dev server prints."""
    if not server_log.exists():
        return "(no server log)"
    lines = server_log.read_text(errors="replace").splitlines()
    return "\n".join(
        re.sub(r"^(\s*(Unseal Key|Root Token):).*", r"\1 (redacted)", line) for line in lines
    )


def print_server_log(server_log: Path) -> None:
    print("OpenBao log (last 60 lines):", file=sys.stderr)
    print("\n".join(redacted_log(server_log).splitlines()[-60:]), file=sys.stderr)


def wait_healthy(addr: str, process: subprocess.Popen, server_log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CheckFailed(
                f"OpenBao exited with {process.returncode}:\n{redacted_log(server_log)}"
            )
        try:
            with urllib.request.urlopen(f"{addr}/v1/sys/health", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise CheckFailed(f"OpenBao was not healthy within 60 s:\n{redacted_log(server_log)}")


# --- the playbook ----------------------------------------------------------------------------


def write_extra_vars(workdir: Path, jwt_public_pem: str, audit_log: Path) -> Path:
    """What an operator passes with -e @file: the JWT keys and issuer, a Kubernetes API outside
    the cluster (with a throwaway CA certificate), and where the audit device writes."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "check-kubernetes-ca")])
    now = datetime.datetime.now(datetime.timezone.utc)
    ca = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    extra = {
        "vault_resource_prefix": RESOURCE_PREFIX,
        "vault_jwt_validation_pubkeys": [jwt_public_pem],
        "vault_jwt_bound_issuer": JWT_ISSUER,
        "vault_kubernetes_host": "https://127.0.0.1:6443",
        "vault_kubernetes_ca_cert": ca.public_bytes(serialization.Encoding.PEM).decode(),
        "vault_kubernetes_disable_local_ca_jwt": True,
        "vault_audit_path": AUDIT_DEVICE,
        "vault_audit_file_path": str(audit_log),
    }
    path = workdir / "vault-vars.json"
    path.write_text(json.dumps(extra))
    return path


def run_playbook(vault: Vault, extra_vars: Path, *more: str) -> tuple[int, str]:
    env = clean_env() | {
        "VAULT_ADDR": vault.addr,
        "VAULT_TOKEN": vault.token,
        "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
    }
    env.pop("ANSIBLE_FORCE_COLOR", None)
    result = subprocess.run(
        [str(BIN / "ansible-playbook"), "playbooks/vault.yml", "-e", f"@{extra_vars}", *more],
        cwd=ANSIBLE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    return result.returncode, result.stdout + result.stderr


def recap(output: str) -> tuple[str, dict]:
    """The PLAY RECAP line of the one host, and its counters."""
    match = re.search(r"^(localhost\s*:\s*ok=.*)$", output.split("PLAY RECAP", 1)[-1], re.M)
    if not match:
        raise CheckFailed(f"no PLAY RECAP in the playbook's output:\n{output}")
    line = match.group(1).strip()
    return line, {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}


def check_undeclared_audit_device_refused(vault: Vault, extra_vars: Path) -> None:
    print("A run expecting an audit device the server configuration does not declare:")
    code, output = run_playbook(vault, extra_vars, "-e", "vault_audit_path=undeclared")
    line, counts = recap(output)
    print(f"  {line}")
    expect(code != 0 and counts["failed"] == 1, "the playbook fails")
    expect(
        'audit "file" "undeclared"' in output,
        "the failure names the audit stanza to add to the server configuration",
    )
    mounts = vault.ok("GET", "sys/mounts")
    expect(
        "rampart/" not in mounts["data"] and counts["changed"] == 0,
        "nothing was written before the check (no rampart/ mount, changed=0)",
    )


def check_applied_twice(vault: Vault, extra_vars: Path) -> None:
    print("The playbook applied twice:")
    for run, wants_changes in (("first", True), ("second", False)):
        code, output = run_playbook(vault, extra_vars)
        line, counts = recap(output)
        print(f"  {run} run: {line}")
        if code != 0 or counts["failed"]:
            raise CheckFailed(f"the {run} run failed:\n{output}")
        if wants_changes:
            expect(counts["changed"] > 0, "the first run configures the fresh server (changed>0)")
        else:
            if counts["changed"]:
                print(output)
            expect(counts["changed"] == 0, "the second run changes nothing (changed=0, failed=0)")


# --- the services' view ----------------------------------------------------------------------


def approle_login(vault: Vault, service: str) -> str:
    role_id = vault.ok("GET", f"auth/approle/role/{service}/role-id")["data"]["role_id"]
    secret_id = vault.ok("POST", f"auth/approle/role/{service}/secret-id", {})["data"]["secret_id"]
    auth = vault.ok(
        "POST", "auth/approle/login", {"role_id": role_id, "secret_id": secret_id}, token=""
    )["auth"]
    expect(
        auth["token_policies"] == [f"rampart-{service}"]
        and auth["renewable"]
        and 0 < auth["lease_duration"] <= 3600,
        f"{service}: AppRole login gives a renewable 1 h token with only rampart-{service}",
    )
    return auth["client_token"]


def check_token_self(vault: Vault, service: str, token: str) -> None:
    status, answer = vault.call("GET", "auth/token/lookup-self", token=token)
    expect(
        status == 200 and answer["data"]["policies"] == [f"rampart-{service}"],
        f"{service}: its token can look itself up",
    )
    status, _ = vault.call("POST", "auth/token/renew-self", {}, token=token)
    expect(status == 200, f"{service}: its token can renew itself")


def check_kv(vault: Vault, tokens: dict, values: dict) -> None:
    print("KV v2 rampart/: each service reads its own path only")
    for service, token in tokens.items():
        status, answer = vault.call("GET", f"rampart/data/{RESOURCE_PREFIX}/{service}/check", token=token)
        expect(
            status == 200 and answer["data"]["data"]["value"] == values[service],
            f"{service}: reads rampart/data/{RESOURCE_PREFIX}/{service}/check",
        )
        status, _ = vault.call("LIST", f"rampart/metadata/{RESOURCE_PREFIX}/{service}/", token=token)
        expect(status == 200, f"{service}: lists rampart/metadata/{RESOURCE_PREFIX}/{service}/")
        for other in SERVICES:
            if other != service:
                status, _ = vault.call("GET", f"rampart/data/{RESOURCE_PREFIX}/{other}/check", token=token)
                expect(status == 403, f"{service}: 403 on rampart/data/{RESOURCE_PREFIX}/{other}/check")
        for method, path in (
            ("GET", "sys/mounts"),
            ("LIST", "sys/policies/acl"),
            ("POST", f"auth/approle/role/{service}/secret-id"),
        ):
            status, _ = vault.call(method, path, {} if method == "POST" else None, token)
            expect(status == 403, f"{service}: 403 on {method} {path}")


def signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def path_error(leaf, intermediate, root, dns_name: str) -> str | None:
    """Why leaf -> intermediate -> root fails RFC 5280 path validation for a TLS server (with
    dns_name) or a TLS client; None if it passes both."""
    store = Store([root])
    try:
        builder = PolicyBuilder().store(store)
        builder.build_server_verifier(DNSName(dns_name)).verify(leaf, [intermediate])
        PolicyBuilder().store(store).build_client_verifier().verify(leaf, [intermediate])
    except VerificationError as error:
        return str(error)
    return None


def check_pki(vault: Vault, tokens: dict) -> None:
    print("PKI: root -> intermediate -> one-hour leaf certificates")
    root = x509.load_pem_x509_certificate(
        vault.ok("GET", "pki/cert/ca")["data"]["certificate"].encode()
    )
    intermediate = x509.load_pem_x509_certificate(
        vault.ok("GET", "pki_int/cert/ca")["data"]["certificate"].encode()
    )
    expect(
        root.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Rampart Root CA"
        and root.subject == root.issuer,
        "pki/ holds the root CA 'Rampart Root CA'",
    )
    expect(signed_by(root, root), "the root CA signed itself")
    expect(signed_by(intermediate, root), "the intermediate CA is signed by the root")
    constraints = intermediate.extensions.get_extension_for_class(x509.BasicConstraints).value
    expect(
        constraints.ca and constraints.path_length == 0,
        "the intermediate may sign no further CA (path length 0)",
    )
    status, _ = vault.call("LIST", "pki/roles")
    expect(status == 404, "the root CA has no roles: it issues no leaf certificates")

    for service in PKI_SERVICES:
        token = tokens[service]
        request = {
            "uri_sans": f"spiffe://rampart/{service}",
            "alt_names": f"{service}.rampart.svc",
            "ip_sans": "127.0.0.1",
            "ttl": "24h",
        }
        issued_at = datetime.datetime.now(datetime.timezone.utc)
        status, answer = vault.call("POST", f"pki_int/issue/{service}", request, token)
        expect(status == 200, f"{service}: issues a certificate from pki_int/issue/{service}")
        check_leaf(service, answer["data"], root, intermediate, issued_at)
        other = next(s for s in PKI_SERVICES if s != service)
        status, _ = vault.call(
            "POST", f"pki_int/issue/{other}", {"uri_sans": f"spiffe://rampart/{other}"}, token
        )
        expect(status == 403, f"{service}: 403 on pki_int/issue/{other}")
        status, _ = vault.call(
            "POST", f"pki_int/issue/{service}", {"uri_sans": f"spiffe://rampart/{other}"}, token
        )
        expect(status == 400, f"{service}: its role refuses {other}'s SPIFFE ID")
        status, _ = vault.call(
            "POST", f"pki_int/issue/{service}", {"alt_names": f"{other}.rampart.svc"}, token
        )
        expect(status == 400, f"{service}: its role refuses {other}'s DNS name")
        status, _ = vault.call("POST", f"pki_int/issue/{service}", {"ip_sans": "10.0.0.1"}, token)
        expect(status == 400, f"{service}: its role refuses an IP SAN other than 127.0.0.1")
    status, _ = vault.call("POST", "pki_int/issue/core", {}, tokens["auth"])
    expect(status == 403, "auth: 403 on pki_int/issue/core (it has no certificate role)")


def check_leaf(service: str, data: dict, root, intermediate, issued_at) -> None:
    leaf = x509.load_pem_x509_certificate(data["certificate"].encode())
    expect(
        signed_by(leaf, intermediate) and not signed_by(leaf, root),
        f"{service}: the leaf is signed by the intermediate, not by the root",
    )
    error = path_error(leaf, intermediate, root, f"{service}.rampart.svc")
    expect(
        error is None,
        f"{service}: leaf -> intermediate -> root validates for TLS server and "
        f"client use{'' if error is None else ': ' + error}",
    )
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    expect(
        sans.get_values_for_type(x509.UniformResourceIdentifier) == [f"spiffe://rampart/{service}"],
        f"{service}: the leaf's only URI SAN is spiffe://rampart/{service}",
    )
    usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    expect(
        ExtendedKeyUsageOID.SERVER_AUTH in usages and ExtendedKeyUsageOID.CLIENT_AUTH in usages,
        f"{service}: the leaf is good for TLS server and client authentication",
    )
    key = leaf.public_key()
    expect(
        isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1",
        f"{service}: the leaf key is EC P-256",
    )
    lifetime = leaf.not_valid_after_utc - issued_at
    expect(
        lifetime <= ONE_HOUR + datetime.timedelta(seconds=5),
        f"{service}: asked for 24 h, the leaf expires within 1 h ({lifetime})",
    )


def check_transit(vault: Vault, tokens: dict) -> None:
    print(f"Transit: auth signs RS256 access tokens with {TRANSIT_KEY}")
    key = vault.ok("GET", f"transit/keys/{TRANSIT_KEY}")["data"]
    expect(
        key["type"] == "rsa-2048" and not key["exportable"] and not key["deletion_allowed"],
        "the key is rsa-2048, not exportable, not deletable",
    )
    status, _ = vault.call("GET", f"transit/export/signing-key/{TRANSIT_KEY}")
    expect(status >= 400, "even the root token cannot export it")

    auth = tokens["auth"]
    header = base64.urlsafe_b64encode(
        json.dumps({"alg": "RS256", "typ": "JWT", "kid": "1"}).encode()
    )
    claims = {"iss": "rampart-check", "sub": "user", "exp": int(time.time()) + 300}
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode())
    signing_input = header.rstrip(b"=") + b"." + payload.rstrip(b"=")
    # As the auth service's Transit signer asks: the SHA-256 digest, version pinned.
    digest = hashlib.sha256(signing_input).digest()
    sign = {
        "input": base64.b64encode(digest).decode(),
        "prehashed": True,
        "signature_algorithm": "pkcs1v15",
        "key_version": 1,
    }
    status, answer = vault.call("POST", f"transit/sign/{TRANSIT_KEY}/sha2-256", sign, auth)
    expect(status == 200, f"auth: signs with transit/sign/{TRANSIT_KEY}/sha2-256")
    signature = base64.b64decode(answer["data"]["signature"].split(":", 2)[2])
    status, answer = vault.call("GET", f"transit/keys/{TRANSIT_KEY}", token=auth)
    expect(status == 200, f"auth: reads transit/keys/{TRANSIT_KEY} (its public keys)")
    public_pem = answer["data"]["keys"]["1"]["public_key"]
    token = (signing_input + b"." + base64.urlsafe_b64encode(signature).rstrip(b"=")).decode()
    decoded = jwt.decode(token, public_pem, algorithms=["RS256"], options={"verify_aud": False})
    expect(decoded == claims, "the signature verifies as an RS256 JWT with the published key")
    status, _ = vault.call("POST", f"transit/sign/{TRANSIT_KEY}/sha2-512", sign, auth)
    expect(status == 403, "auth: 403 on signing with another hash")
    status, _ = vault.call("POST", f"transit/keys/{TRANSIT_KEY}/rotate", {}, auth)
    expect(status == 403, "auth: 403 on rotating the key")
    status, _ = vault.call(
        "POST", f"transit/keys/{TRANSIT_KEY}/config", {"deletion_allowed": True}, auth
    )
    expect(status == 403, "auth: 403 on changing the key's configuration")
    for service in ("core", "auth-proxy"):
        status, _ = vault.call("POST", f"transit/sign/{TRANSIT_KEY}/sha2-256", sign, tokens[service])
        expect(status == 403, f"{service}: 403 on transit/sign/{TRANSIT_KEY}/sha2-256")


def service_account_jwt(key, subject: str, audience: str = "vault") -> str:
    now = int(time.time())
    claims = {
        "iss": JWT_ISSUER,
        "aud": audience,
        "sub": subject,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "check"})


def check_jwt(vault: Vault, key, values: dict) -> None:
    print("JWT auth: EKS service-account tokens")
    sub = f"system:serviceaccount:{NAMESPACE}:core"
    status, answer = vault.call(
        "POST", "auth/jwt/login", {"role": "core", "jwt": service_account_jwt(key, sub)}, token=""
    )
    expect(
        status == 200 and answer["auth"]["token_policies"] == ["rampart-core"],
        "core's service-account token logs in to role core with only rampart-core",
    )
    token = answer["auth"]["client_token"]
    status, answer = vault.call("GET", f"rampart/data/{RESOURCE_PREFIX}/core/check", token=token)
    expect(
        status == 200 and answer["data"]["data"]["value"] == values["core"],
        "that token reads core's KV path",
    )
    status, _ = vault.call("GET", f"rampart/data/{RESOURCE_PREFIX}/auth/check", token=token)
    expect(status == 403, "that token gets 403 on auth's KV path")

    refused = {
        "auth-proxy's subject": service_account_jwt(
            key, f"system:serviceaccount:{NAMESPACE}:auth-proxy"
        ),
        "another namespace": service_account_jwt(key, "system:serviceaccount:default:core"),
        "another audience": service_account_jwt(key, sub, audience="kubernetes"),
        "another key": service_account_jwt(
            rsa.generate_private_key(public_exponent=65537, key_size=2048), sub
        ),
    }
    for what, token in refused.items():
        status, _ = vault.call("POST", "auth/jwt/login", {"role": "core", "jwt": token}, token="")
        expect(status in (400, 403), f"role core refuses a token with {what} ({status})")


def check_kubernetes_roles(vault: Vault) -> None:
    print("Kubernetes auth: one role per service (no cluster here to log in against)")
    for service in SERVICES:
        role = vault.ok("GET", f"auth/kubernetes/role/{service}")["data"]
        expect(
            role["bound_service_account_names"] == [service]
            and role["bound_service_account_namespaces"] == [NAMESPACE]
            and role["audience"] == "vault"
            and role["token_policies"] == [f"rampart-{service}"],
            f"role {service}: service account {service} in {NAMESPACE}, audience vault, rampart-{service}",
        )


def check_audit(audit_log: Path, values: dict) -> None:
    print("Audit log")
    text = audit_log.read_text()
    expect(all(value not in text for value in values.values()), "no secret value appears in clear")
    reads = []
    for line in text.splitlines():
        entry = json.loads(line)
        request = entry.get("request") or {}
        if (
            entry.get("type") == "response"
            and request.get("path") == f"rampart/data/{RESOURCE_PREFIX}/core/check"
            and request.get("operation") == "read"
            and "rampart-core" in ((entry.get("auth") or {}).get("policies") or [])
        ):
            reads.append(entry)
    expect(len(reads) > 0, f"core's read of rampart/data/{RESOURCE_PREFIX}/core/check is logged with core's policy")
    value = reads[0]["response"]["data"]["data"]["value"]
    expect(value.startswith("hmac-sha256:"), "the value read is logged HMAC'd")


def main() -> int:
    missing = [tool for tool in ("bao", "ansible-playbook") if not (BIN / tool).exists()]
    if missing:
        print(
            f"FAILED: no {', '.join(missing)} in {BIN}; run this with the venv's python "
            "(scripts/requirements-dev.txt)",
            file=sys.stderr,
        )
        return 1
    with tempfile.TemporaryDirectory(prefix="vault-playbook-") as tmp:
        workdir = Path(tmp)
        jwt_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwt_public = (
            jwt_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        server_log = workdir / "openbao.log"
        try:
            with openbao(workdir) as (vault, audit_log, server_log):
                print(f"OpenBao dev server at {vault.addr}")
                extra_vars = write_extra_vars(workdir, jwt_public, audit_log)
                check_undeclared_audit_device_refused(vault, extra_vars)
                check_applied_twice(vault, extra_vars)

                values = {s: secrets.token_urlsafe(24) for s in SERVICES}
                for service, value in values.items():
                    vault.ok("POST", f"rampart/data/{RESOURCE_PREFIX}/{service}/check", {"data": {"value": value}})
                print("AppRole logins and the services' own tokens")
                tokens = {s: approle_login(vault, s) for s in SERVICES}
                for service, token in tokens.items():
                    check_token_self(vault, service, token)
                check_kv(vault, tokens, values)
                check_pki(vault, tokens)
                check_transit(vault, tokens)
                check_jwt(vault, jwt_key, values)
                check_kubernetes_roles(vault)
                check_audit(audit_log, values)
        except Exception as error:  # noqa: BLE001 - any failure, reported with the server's log
            if not isinstance(error, CheckFailed):
                traceback.print_exc()
            print(f"\nFAILED: {type(error).__name__}: {error}", file=sys.stderr)
            print_server_log(server_log)
            return 1
    print("\nvault playbook: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
