#!/usr/bin/env python3
"""The auth and core APIs checked by clients nobody here wrote, against the running embedded
platform.

Usage: check_api.py <path to the rampart binary>

1. Starts `rampart up` on free loopback ports with a fresh data directory, and signs up, confirms
   and signs in one user (the confirmation code is read from the embedded outbox).
2. schemathesis generates requests from /v1/auth/openapi.json, with that user's bearer token, and
   fails on any server error, any status or content type the document does not list, any body
   or header outside its schema, and any token-guarded operation it could not reach signed in
   (scripts/schemathesis.toml). The operations that end the session run last, each with a
   token of its own.
3. schemathesis does the same from core's /v1/openapi.json, through the auth-proxy (core's own
   port takes only the proxy's client certificate), with the same user's token.
4. authlib validates the discovery document (RFC 8414), verifies an access token from the JWKS,
   refreshes through the advertised token endpoint and reads the advertised userinfo endpoint.

Exits non-zero on the first failed check; the platform is stopped either way.
"""

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings

PASSWORD = "violet kettle harbour"
EMAIL = "fuzz@example.com"
# Enough generated requests per operation to reach every documented answer, few enough to keep
# the run to a minute or two on two cores. The seed makes a failure reproducible. One worker:
# with two, hypothesis describes its strategies from two threads at once and CPython 3.11's
# ast module can fail under that ("AST constructor recursion depth mismatch"), an error of the
# tool, not of the API.
SCHEMATHESIS_ARGS = [
    "--checks",
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_headers_conformance,response_schema_conformance",
    "--max-examples",
    "25",
    "--seed",
    "20261202",
    "--workers",
    "1",
    "--generation-database",
    "none",
    "--no-color",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(method: str, url: str, body=None, token=None):
    """Sends a JSON request; returns (status, parsed body or None)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if body is not None:
        request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw else None


def expect(status, body, wanted: int, what: str):
    if status != wanted:
        sys.exit(f"check-api: {what} answered {status}, not {wanted}: {body}")


class Platform:
    """`rampart up` on free ports, with its own data directory."""

    def __init__(self, binary: str, data_dir: str):
        ports = {name: free_port() for name in ("proxy", "admin", "auth", "core")}
        self.proxy = f"http://127.0.0.1:{ports['proxy']}"
        self.auth = f"http://127.0.0.1:{ports['auth']}"
        self.data_dir = data_dir
        self.device_token = None
        env = dict(os.environ, RAMPART_DATA_DIR=data_dir, RAMPART_TOKENS__ISSUER=self.proxy)
        env.pop("RAMPART_CONFIG", None)
        for name, port in ports.items():
            env[f"RAMPART_LISTEN__{name.upper()}"] = f"127.0.0.1:{port}"
        self.log = open(os.path.join(data_dir, "rampart.log"), "w")
        self.process = subprocess.Popen([binary, "up"], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"check-api: rampart up exited with {self.process.returncode}:\n{self.output()}")
            try:
                if call("GET", f"{self.proxy}/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        sys.exit(f"check-api: rampart up was not ready within 60 s:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        with open(self.log.name) as log:
            return log.read()[-4000:]

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()

    def outbox_code(self, email: str, purpose: str) -> str:
        with open(os.path.join(self.data_dir, "outbox.log")) as outbox:
            codes = re.findall(rf"to={re.escape(email)} purpose={purpose} code=(\S+)", outbox.read())
        if not codes:
            sys.exit(f"check-api: no {purpose} code for {email} in the outbox")
        return codes[-1]

    def signed_in_user(self) -> dict:
        """Signs up, confirms and signs in; returns the token response."""
        api = f"{self.auth}/v1/auth"
        status, body = call("POST", f"{api}/register", {"email": EMAIL, "password": PASSWORD})
        expect(status, body, 202, "register")
        code = self.outbox_code(EMAIL, "confirm_sign_up")
        status, body = call("POST", f"{api}/confirm", {"email": EMAIL, "code": code})
        expect(status, body, 204, "confirm")
        return self.sign_in()

    def sign_in(self) -> dict:
        """A new session of the user; returns the token response.

        Like a real client, it presents the device token its last sign-in returned, so the
        fuzzer's failed sign-ins from this address do not throttle it."""
        request = {"email": EMAIL, "password": PASSWORD}
        if self.device_token:
            request["device_token"] = self.device_token
        status, body = call("POST", f"{self.auth}/v1/auth/login", request)
        expect(status, body, 200, "login")
        self.device_token = body.get("device_token")
        return body


# Operations that end the session whose token the run carries: fuzzed last, each pass with a
# token of its own, so that every other operation is fuzzed signed in.
SESSION_ENDING = ["/v1/auth/logout", "/v1/auth/logout/all"]


def fuzz(platform: Platform, access_token: str, paths: list[str], include: bool, schema: str = "", url: str = ""):
    schemathesis = os.path.join(os.path.dirname(sys.executable), "schemathesis")
    config = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schemathesis.toml")
    selection = []
    for path in paths:
        selection += ["--include-path" if include else "--exclude-path", path]
    command = [
        schemathesis,
        "--config-file",
        config,
        "run",
        schema or f"{platform.auth}/v1/auth/openapi.json",
        *(["--url", url] if url else []),
        "--header",
        f"Authorization: Bearer {access_token}",
        *selection,
        *SCHEMATHESIS_ARGS,
    ]
    scope = ("only " if include else "all but ") + ", ".join(paths) if paths else "every operation"
    print(f"check-api: schemathesis against {url or schema or platform.auth} ({scope})", flush=True)
    # Run where its crash cache is deleted with the platform's data.
    if subprocess.run(command, cwd=platform.data_dir).returncode != 0:
        sys.exit("check-api: schemathesis failed; its report above names each case")


def save_core_schema(platform: Platform, access_token: str) -> str:
    """core's OpenAPI document, read through the auth-proxy with a token, in a file: core's own
    port speaks only mutual TLS with the proxy."""
    status, document = call("GET", f"{platform.proxy}/v1/openapi.json", token=access_token)
    expect(status, document, 200, "core's /v1/openapi.json through the proxy")
    path = os.path.join(platform.data_dir, "core-openapi.json")
    with open(path, "w") as file:
        json.dump(document, file)
    return path


def standard_client(platform: Platform):
    """authlib, a widely used OAuth client library, as a relying party would use it: discovery
    at the issuer, each key's kid its RFC 7638 thumbprint, the access token verified from the
    JWKS alone, a refresh through the advertised
    token endpoint (RFC 6749 §6, form-encoded) and the advertised userinfo endpoint."""
    os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"  # the issuer is plain http on loopback
    # authlib.jose still works in the pinned 1.x and says it is moving to joserfc; quiet that.
    warnings.filterwarnings("ignore", message="authlib.jose module is deprecated")
    from authlib.integrations.base_client.errors import OAuthError
    from authlib.integrations.requests_client import OAuth2Session
    from authlib.jose import JsonWebKey, jwt
    from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

    issuer = platform.proxy
    status, document = call("GET", f"{issuer}/.well-known/openid-configuration")
    expect(status, document, 200, "discovery")
    metadata = AuthorizationServerMetadata(document)
    for key in metadata.REGISTRY_KEYS:
        if key == "response_types_supported":
            # Required by RFC 8414, and truly empty while Rampart has no authorization
            # endpoint; authlib reads an empty list as absent, so this one member is checked
            # here instead: present, a list, and claiming nothing untrue.
            if document.get(key) != []:
                sys.exit(f"check-api: {key} is {document.get(key)!r}, not []")
            continue
        try:
            getattr(metadata, f"validate_{key}")()
        except ValueError as error:
            sys.exit(f"check-api: authlib refuses the discovery document: {error}")
    if document["issuer"] != issuer:
        sys.exit(f"check-api: discovery names issuer {document['issuer']}, fetched from {issuer}")

    tokens = platform.sign_in()
    first_refresh_token = tokens["refresh_token"]
    status, jwks = call("GET", document["jwks_uri"])
    expect(status, jwks, 200, "JWKS")
    for key in jwks["keys"]:
        if JsonWebKey.import_key(key).thumbprint() != key["kid"]:
            sys.exit(f"check-api: kid {key['kid']} is not the key's RFC 7638 thumbprint")
    keys = JsonWebKey.import_key_set(jwks)
    claims = jwt.decode(
        tokens["access_token"],
        keys,
        claims_options={"iss": {"essential": True, "value": issuer}, "aud": {"essential": True}},
    )
    claims.validate()

    client = OAuth2Session(client_id="check-api", token=dict(tokens), token_endpoint_auth_method="none")
    refreshed = client.refresh_token(document["token_endpoint"], refresh_token=first_refresh_token)
    if not refreshed.get("access_token") or refreshed.get("refresh_token") == first_refresh_token:
        sys.exit(f"check-api: the refresh did not return new tokens: {sorted(refreshed)}")
    userinfo = client.get(document["userinfo_endpoint"])
    if userinfo.status_code != 200 or userinfo.json().get("sub") != claims["sub"]:
        sys.exit(f"check-api: userinfo answered {userinfo.status_code} without the token's sub")
    # The rotated-away refresh token is refused as RFC 6749 says: invalid_grant.
    try:
        client.refresh_token(document["token_endpoint"], refresh_token=first_refresh_token)
        sys.exit("check-api: a rotated-away refresh token was accepted")
    except OAuthError as error:
        if error.error != "invalid_grant":
            sys.exit(f"check-api: a reused refresh token gave {error.error}, not invalid_grant")
    print("check-api: authlib accepts discovery, the JWKS, the token endpoint and userinfo")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with tempfile.TemporaryDirectory() as data_dir:
        platform = Platform(sys.argv[1], data_dir)
        try:
            fuzz(platform, platform.signed_in_user()["access_token"], SESSION_ENDING, include=False)
            standard_client(platform)
            for path in SESSION_ENDING:
                fuzz(platform, platform.sign_in()["access_token"], [path], include=True)
            core_schema = save_core_schema(platform, platform.sign_in()["access_token"])
            fuzz(platform, platform.sign_in()["access_token"], [], include=False, schema=core_schema, url=platform.proxy)
        finally:
            platform.stop()
    print("check-api: passed")


if __name__ == "__main__":
    main()
