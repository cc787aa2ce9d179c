#!/usr/bin/env python3
"""LocalStack's provisioning script makes what `rampart bootstrap` and Terraform make.

Usage: check_localstack.py RAMPART_BINARY LAMBDA_DIR   (AWS_ENDPOINT_URL: the run's moto server;
                                                        LAMBDA_DIR: scripts/build-lambdas' zips,
                                                        <target>/lambda/<architecture>)

localstack/init/ready.d/provision.sh is what LocalStack runs at start; it cannot be run inside
LocalStack here (no Docker), so it runs against the test command's moto server, which answers
the same AWS APIs, Cognito included (as LocalStack Pro does). With the AWS CLI (`python -m
awscli`, pinned in scripts/requirements-dev.txt) in place of `awslocal`:

1. provision.sh under one fresh prefix, twice: the second run must create nothing. Before the
   first, 61 other user pools are made, and before the second, 61 other app clients in its pool:
   it must find its own past the first page of a listing.
2. `rampart bootstrap` under a second fresh prefix.
3. Both prefixes are described through the AWS APIs and must match, names aside: each table's
   keys, attributes, indexes, stream and TTL; each key's spec, usage and rotation; the secret
   names and which hold a value; the user pool's sign-in, password, MFA and recovery settings
   and its app client's flows, secret and token lifetimes. Only the differences provision.sh's
   header states are allowed (no table encryption or deletion protection locally). The user pool
   and client must also be what the schema's user_pool says, as Terraform's identity module
   reads it.
4. `rampart bootstrap` under the script's prefix must find, not duplicate, what it made (past
   those other pools and clients): the same user pool and client, one pool of that name, one key
   per alias.
5. The functions the script deployed from LAMBDA_DIR are terraform/platform's: one per crate under
   functions/, named <prefix>-<crate>, on provided.al2023 with handler `bootstrap` and the zip's
   architecture and bytes, with the environment terraform/platform gives them (its
   function_environment; the SES configuration set and CloudFront's client address header have no
   local counterpart) naming the pool and client the script made; and the REST API sends the
   root and every path to the auth function, deployed.

Exits 1 with every difference found.
"""

import base64
import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import boto3
import hcl2

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "localstack" / "init" / "ready.d" / "provision.sh"
SCHEMA_FILE = ROOT / "schema" / "platform.json"
# What both provisioners read, read once.
SCHEMA = json.loads(SCHEMA_FILE.read_text())
REGION = "us-east-1"
# terraform/platform's function environment that has no local counterpart.
NOT_LOCAL = {"RAMPART_MAIL__CONFIGURATION_SET", "RAMPART_HTTP__CLIENT_ADDRESS_HEADER"}
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}


def fail(message: str) -> None:
    print(f"check_localstack: {message}", file=sys.stderr)
    sys.exit(1)


def run(command: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        fail(f"`{' '.join(command[:3])}` exited with {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def provision_script(endpoint: str, prefix: str, lambda_dir: Path) -> str:
    env = dict(os.environ, **CREDENTIALS, RAMPART_SCHEMA=str(SCHEMA_FILE), RAMPART_RESOURCE_PREFIX=prefix,
               RAMPART_LAMBDA_DIR=str(lambda_dir),
               AWSLOCAL=f"{sys.executable} -m awscli --endpoint-url {endpoint} --region {REGION}")
    return run(["bash", str(SCRIPT)], env)


def bootstrap(binary: str, endpoint: str, prefix: str) -> str:
    env = dict(os.environ, **CREDENTIALS, AWS_ENDPOINT_URL=endpoint, AWS_REGION=REGION,
               RAMPART_BACKEND="aws", RAMPART_RESOURCE_PREFIX=prefix)
    return run([binary, "bootstrap"], env)


def printed(output: str, name: str) -> str:
    match = re.search(rf"{name}=(\S+)", output)
    if not match:
        fail(f"no {name} in:\n{output}")
    return match.group(1)


def every(client, operation: str, key: str, **arguments) -> list:
    """Every item of a listing, all pages."""
    pages = client.get_paginator(operation).paginate(MaxResults=60, **arguments)
    return [item for page in pages for item in page[key]]


def more_than_a_page(cognito, prefix: str, pool_id: str | None = None) -> None:
    """Makes 61 user pools (or, in pool `pool_id`, app clients) named after `prefix`, so that
    whoever looks for theirs by name must read past the first page of 60."""
    for n in range(61):
        if pool_id:
            cognito.create_user_pool_client(UserPoolId=pool_id, ClientName=f"{prefix}-other-{n}")
        else:
            cognito.create_user_pool(PoolName=f"{prefix}-other-{n}")


def describe(clients: dict, prefix: str) -> dict:
    """Everything both provisioners set under `prefix`, with the prefix replaced by `<p>`."""
    dynamodb, kms, secretsmanager, cognito = (clients[n] for n in ("dynamodb", "kms", "secretsmanager", "cognito-idp"))
    found: dict = {"tables": {}, "keys": {}, "secrets": {}}

    for name in SCHEMA["tables"]:
        table = dynamodb.describe_table(TableName=f"{prefix}-{name}")["Table"]
        ttl = dynamodb.describe_time_to_live(TableName=f"{prefix}-{name}")["TimeToLiveDescription"]
        found["tables"][name] = {
            "keys": table["KeySchema"],
            "attributes": sorted(table["AttributeDefinitions"], key=lambda a: a["AttributeName"]),
            "billing": table.get("BillingModeSummary", {}).get("BillingMode"),
            "indexes": sorted(
                ({"name": i["IndexName"], "keys": i["KeySchema"], "projection": i["Projection"]}
                 for i in table.get("GlobalSecondaryIndexes", [])),
                key=lambda i: i["name"],
            ),
            "stream": table.get("StreamSpecification"),
            "ttl": (ttl.get("TimeToLiveStatus"), ttl.get("AttributeName")),
        }

    aliases = kms.list_aliases()["Aliases"]
    for name in SCHEMA["kms_keys"]:
        alias = f"alias/{prefix}-{name}"
        targets = [a["TargetKeyId"] for a in aliases if a["AliasName"] == alias]
        if len(targets) != 1:
            fail(f"{len(targets)} keys behind {alias}")
        key = kms.describe_key(KeyId=targets[0])["KeyMetadata"]
        rotation = (kms.get_key_rotation_status(KeyId=targets[0])["KeyRotationEnabled"]
                    if key["KeySpec"] == "SYMMETRIC_DEFAULT" else None)
        found["keys"][name] = {"spec": key["KeySpec"], "usage": key["KeyUsage"], "rotation": rotation}

    for name in SCHEMA["secrets"]:
        secret_id = f"{prefix}/{name}"
        versions = secretsmanager.list_secret_version_ids(SecretId=secret_id)["Versions"]
        found["secrets"][name] = {"has_value": any("AWSCURRENT" in v.get("VersionStages", []) for v in versions)}

    pool_name = f"{prefix}-{SCHEMA['user_pool']['name']}"
    pools = [p for p in every(cognito, "list_user_pools", "UserPools") if p["Name"] == pool_name]
    if len(pools) != 1:
        fail(f"{len(pools)} user pools named {pool_name}")
    pool = cognito.describe_user_pool(UserPoolId=pools[0]["Id"])["UserPool"]
    mfa = cognito.get_user_pool_mfa_config(UserPoolId=pool["Id"])
    client_name = f"{prefix}-{SCHEMA['user_pool']['client_name']}"
    listed = every(cognito, "list_user_pool_clients", "UserPoolClients", UserPoolId=pool["Id"])
    clients_named = [c for c in listed if c["ClientName"] == client_name]
    if len(clients_named) != 1:
        fail(f"{len(clients_named)} app clients named {client_name}")
    client = cognito.describe_user_pool_client(UserPoolId=pool["Id"], ClientId=clients_named[0]["ClientId"])["UserPoolClient"]
    found["pool"] = {
        "id": pool["Id"],
        "username_attributes": pool.get("UsernameAttributes"),
        "auto_verified": pool.get("AutoVerifiedAttributes"),
        "case_sensitive": pool.get("UsernameConfiguration", {}).get("CaseSensitive"),
        "password_policy": pool["Policies"]["PasswordPolicy"],
        "mfa": mfa.get("MfaConfiguration"),
        "totp": mfa.get("SoftwareTokenMfaConfiguration"),
        "recovery": pool.get("AccountRecoverySetting"),
    }
    found["client"] = {
        "id": client["ClientId"],
        "flows": sorted(client.get("ExplicitAuthFlows", [])),
        "has_secret": bool(client.get("ClientSecret")),
        "prevent_user_existence_errors": client.get("PreventUserExistenceErrors"),
        "token_revocation": client.get("EnableTokenRevocation"),
        "validity": (client.get("AccessTokenValidity"), client.get("IdTokenValidity"),
                     client.get("RefreshTokenValidity"), client.get("TokenValidityUnits")),
    }
    return found


def schema_differences(found: dict) -> list[str]:
    """Where the user pool and client in `found` (from describe) are not the schema's user_pool."""
    pool = SCHEMA["user_pool"]
    units = pool["token_validity_units"]
    policy = {
        "MinimumLength": pool["password_minimum_length"],
        "RequireLowercase": pool["password_require_lowercase"],
        "RequireUppercase": pool["password_require_uppercase"],
        "RequireNumbers": pool["password_require_numbers"],
        "RequireSymbols": pool["password_require_symbols"],
        "TemporaryPasswordValidityDays": pool["temporary_password_validity_days"],
    }
    expected = {
        "pool.username_attributes": pool["username_attributes"],
        "pool.case_sensitive": pool["username_case_sensitive"],
        "pool.password_policy": policy,
        "pool.mfa": pool["mfa"],
        "pool.recovery": {"RecoveryMechanisms": [{"Name": name, "Priority": priority} for priority, name
                                                 in enumerate(pool["account_recovery_mechanisms"], start=1)]},
        "client.flows": sorted(pool["explicit_auth_flows"]),
        "client.has_secret": pool["generate_client_secret"],
        "client.prevent_user_existence_errors": pool["prevent_user_existence_errors"],
        "client.token_revocation": pool["enable_token_revocation"],
        "client.validity": (pool["access_token_validity"], pool["id_token_validity"], pool["refresh_token_validity"],
                            {"AccessToken": units["access_token"], "IdToken": units["id_token"],
                             "RefreshToken": units["refresh_token"]}),
    }
    if pool["mfa"] != "OFF":
        expected["pool.totp"] = {"Enabled": True}
    problems = []
    for path, wanted in expected.items():
        part, key = path.split(".")
        value = found[part][key]
        if key == "password_policy":
            value = {name: (value or {}).get(name) for name in wanted}
        if value != wanted:
            problems.append(f"{path}: {value!r}, the schema's user_pool says {wanted!r}")
    return problems


def terraform_function_environment() -> set[str]:
    with open(ROOT / "terraform" / "platform" / "main.tf", encoding="utf-8") as handle:
        platform = hcl2.load(handle)
    for block in platform["locals"]:
        if "function_environment" in block:
            environment = block["function_environment"]
            return set((environment[0] if isinstance(environment, list) else environment).keys())
    fail("terraform/platform/main.tf has no local function_environment")


def check_functions(clients: dict, prefix: str, lambda_dir: Path, pool_id: str, client_id: str,
                    api_url: str) -> list[str]:
    """What is wrong with the functions and the REST API provision.sh deployed under `prefix`."""
    crates = sorted(path.name for path in (ROOT / "functions").iterdir() if (path / "Cargo.toml").is_file())
    wanted_keys = terraform_function_environment() - NOT_LOCAL
    problems = []
    arns = {}
    for crate in crates:
        zip_path = lambda_dir / f"rampart-{crate}" / "bootstrap.zip"
        try:
            function = clients["lambda"].get_function(FunctionName=f"{prefix}-{crate}")["Configuration"]
        except clients["lambda"].exceptions.ResourceNotFoundException:
            problems.append(f"no function {prefix}-{crate}")
            continue
        arns[crate] = function["FunctionArn"]
        expected = {
            "runtime": "provided.al2023",
            "handler": "bootstrap",
            # build-lambdas names the directory after the architecture it built (and checked).
            "architectures": [lambda_dir.name],
            "code": base64.b64encode(hashlib.sha256(zip_path.read_bytes()).digest()).decode(),
        }
        found = {
            "runtime": function.get("Runtime"),
            "handler": function.get("Handler"),
            "architectures": function.get("Architectures"),
            "code": function.get("CodeSha256"),
        }
        problems += [f"{prefix}-{crate} {d}" for d in differences(expected, found)]
        environment = function.get("Environment", {}).get("Variables", {})
        if set(environment) != wanted_keys:
            problems.append(f"{prefix}-{crate} environment {sorted(environment)}, Terraform's {sorted(wanted_keys)}")
        for key, value in (("RAMPART_BACKEND", "aws"), ("RAMPART_RESOURCE_PREFIX", prefix),
                           ("RAMPART_AWS__USER_POOL_ID", pool_id), ("RAMPART_AWS__USER_POOL_CLIENT_ID", client_id),
                           ("RAMPART_TOKENS__ISSUER", api_url)):
            if environment.get(key) != value:
                problems.append(f"{prefix}-{crate} {key}={environment.get(key)!r}, not {value!r}")

    apigateway = clients["apigateway"]
    apis = [a for a in apigateway.get_rest_apis(limit=500)["items"] if a["name"] == f"{prefix}-api"]
    if len(apis) != 1:
        return problems + [f"{len(apis)} REST APIs named {prefix}-api"]
    api_id = apis[0]["id"]
    resources = {r["path"]: r["id"] for r in apigateway.get_resources(restApiId=api_id, limit=500)["items"]}
    for path in ("/", "/{proxy+}"):
        if path not in resources:
            problems.append(f"{prefix}-api has no resource {path}")
            continue
        integration = apigateway.get_integration(restApiId=api_id, resourceId=resources[path], httpMethod="ANY")
        if integration.get("type") != "AWS_PROXY" or arns.get("auth", "-") not in integration.get("uri", ""):
            problems.append(f"{prefix}-api ANY {path} is not a Lambda proxy integration of {prefix}-auth: {integration}")
    if not any(s["stageName"] == "local" for s in apigateway.get_stages(restApiId=api_id)["item"]):
        problems.append(f"{prefix}-api has no stage `local`")
    return problems


def differences(left: object, right: object, path: str = "") -> list[str]:
    if isinstance(left, dict) and isinstance(right, dict):
        return [d for key in sorted(set(left) | set(right))
                for d in differences(left.get(key), right.get(key), f"{path}.{key}" if path else key)]
    return [] if left == right else [f"{path}: provision.sh {left!r}, rampart bootstrap {right!r}"]


def main() -> None:
    if len(sys.argv) != 3:
        fail("usage: check_localstack.py RAMPART_BINARY LAMBDA_DIR")
    binary, lambda_dir = sys.argv[1], Path(sys.argv[2]).resolve()
    if lambda_dir.name not in ("x86_64", "arm64"):
        fail(f"{lambda_dir}: not a <target>/lambda/<architecture> directory of scripts/build-lambdas")
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        fail("AWS_ENDPOINT_URL is not set: run by scripts/test, or point it at a moto server")
    clients = {name: boto3.client(name, endpoint_url=endpoint, region_name=REGION,
                                  aws_access_key_id="testing", aws_secret_access_key="testing")
               for name in ("dynamodb", "kms", "secretsmanager", "cognito-idp", "lambda", "apigateway")}
    by_script, by_bootstrap = f"ls{secrets.token_hex(4)}", f"bs{secrets.token_hex(4)}"

    cognito = clients["cognito-idp"]
    more_than_a_page(cognito, f"{by_script}-other")
    first = provision_script(endpoint, by_script, lambda_dir)
    pool_name = f"{by_script}-{SCHEMA['user_pool']['name']}"
    pool_id = next(p["Id"] for p in every(cognito, "list_user_pools", "UserPools") if p["Name"] == pool_name)
    more_than_a_page(cognito, f"{by_script}-other", pool_id)
    again = provision_script(endpoint, by_script, lambda_dir)
    created_again = [line for line in again.splitlines()
                     if any(word in line for word in (" created", " set to ", " updated"))]
    if created_again:
        fail("provision.sh run again changed things:\n" + "\n".join(created_again))
    print(f"provision.sh under {by_script}: made everything, and a second run changed nothing")

    bootstrap(binary, endpoint, by_bootstrap)
    script_made, bootstrap_made = describe(clients, by_script), describe(clients, by_bootstrap)
    ids = {part: (script_made[part].pop("id"), bootstrap_made[part].pop("id")) for part in ("pool", "client")}
    found = differences(script_made, bootstrap_made)
    if found:
        fail("provision.sh and rampart bootstrap disagree:\n  " + "\n  ".join(found))
    print(f"rampart bootstrap under {by_bootstrap}: the same tables, keys, secrets, user pool and client")
    found = schema_differences(script_made)
    if found:
        fail("the user pool and client both made are not the schema's user_pool:\n  " + "\n  ".join(found))
    print("the user pool and client are the schema's user_pool, as Terraform's identity module reads it")

    # bootstrap over the script's resources finds them; describe() fails on any duplicate.
    found_again = bootstrap(binary, endpoint, by_script)
    pool_id, client_id = ids["pool"][0], ids["client"][0]
    for name, expected in (("RAMPART_AWS__USER_POOL_ID", pool_id), ("RAMPART_AWS__USER_POOL_CLIENT_ID", client_id)):
        if printed(first, name) != expected or printed(found_again, name) != expected:
            fail(f"{name}: provision.sh made {printed(first, name)}, bootstrap then used {printed(found_again, name)}")
    describe(clients, by_script)
    print(f"rampart bootstrap under {by_script}: used the pool {pool_id} and client {client_id} provision.sh made, "
          "created no second pool, client or key")

    problems = check_functions(clients, by_script, lambda_dir, pool_id, client_id, printed(first, "RAMPART_API_URL"))
    if problems:
        fail("the functions or the REST API provision.sh deployed are not terraform/platform's:\n  "
             + "\n  ".join(problems))
    print(f"provision.sh under {by_script}: every function of functions/ deployed as terraform/platform deploys it, "
          "and the REST API sends every path to the auth function")


if __name__ == "__main__":
    main()
