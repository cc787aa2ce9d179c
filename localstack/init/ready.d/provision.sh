#!/usr/bin/env bash
# Creates Rampart's DynamoDB tables, KMS keys + aliases and Secrets Manager
# secrets in LocalStack, from schema/platform.json (the same file Terraform
# and the Rust code read), so nothing here repeats a name.
#
# LocalStack runs this from /etc/localstack/init/ready.d once its services are
# up. It is idempotent: anything that already exists is left alone.
#
# LocalStack community has no Cognito, so the user pool and app client are only
# created when cognito-idp answers (LocalStack Pro); then the client secret is
# stored in the schema's secret as well. Tests that need no Docker use moto
# instead: `rampart bootstrap` against moto_server.
#
# With the pool, and the Lambda zips of scripts/build-lambdas mounted, it also
# deploys the functions as terraform/platform does (<prefix>-<crate>, the
# provided.al2023 runtime, the same environment) and a REST API whose every
# path goes to the auth function; the authorizer is deployed but guards
# nothing, since the routes it guards lead to the auth-proxy on EKS.
#
# Environment:
#   RAMPART_SCHEMA           schema path (default /etc/rampart/platform.json)
#   RAMPART_RESOURCE_PREFIX  prefix of every physical name (default rampart-dev)
#   RAMPART_LAMBDA_DIR       the zips, <dir>/rampart-<crate>/bootstrap.zip
#                            (default /etc/rampart/lambda)
#   RAMPART_MAIL_SENDER      the functions' RAMPART_MAIL__SENDER (default
#                            no-reply@example.com)
#   AWSLOCAL                 AWS CLI command (default awslocal; for use outside
#                            the container, e.g. "aws --endpoint-url http://localhost:4566")
set -euo pipefail

export RAMPART_SCHEMA="${RAMPART_SCHEMA:-/etc/rampart/platform.json}"
export RAMPART_RESOURCE_PREFIX="${RAMPART_RESOURCE_PREFIX:-rampart-dev}"
export AWSLOCAL="${AWSLOCAL:-awslocal}"

# python3 ships in the LocalStack image (jq does not); only the standard library is used.
exec python3 - <<'PY'
import base64
import glob
import hashlib
import json
import os
import secrets
import shlex
import subprocess
import sys
import zipfile

schema_path = os.environ["RAMPART_SCHEMA"]
prefix = os.environ["RAMPART_RESOURCE_PREFIX"]
cli = shlex.split(os.environ["AWSLOCAL"])

with open(schema_path, encoding="utf-8") as handle:
    schema = json.load(handle)


def log(message):
    print(f"[rampart provision] {message}", flush=True)


def aws(*args, missing=None):
    """Run the AWS CLI and return its JSON output.

    If `missing` names an error code and the command fails with it, return None.
    """
    result = subprocess.run([*cli, *args, "--output", "json"], capture_output=True, text=True)
    if result.returncode != 0:
        if missing and missing in result.stderr:
            return None
        sys.stderr.write(result.stderr)
        raise SystemExit(f"[rampart provision] failed: {' '.join(args[:2])}")
    return json.loads(result.stdout) if result.stdout.strip() else {}


def every(*args, key):
    """Every item of a listing answered a page at a time: an account with more than a page of
    pools still finds its own."""
    items, token = [], []
    while True:
        page = aws(*args, "--max-results", "60", *token)
        items += page[key]
        if not page.get("NextToken"):
            return items
        token = ["--next-token", page["NextToken"]]


# DynamoDB tables. On-demand billing, TTL, streams and GSIs as in Terraform;
# point-in-time recovery where the emulator supports it. Deletion protection
# and KMS encryption are left out locally so a developer can reset freely.
for name, table in schema["tables"].items():
    physical = f"{prefix}-{name}"
    if aws("dynamodb", "describe-table", "--table-name", physical, missing="ResourceNotFoundException"):
        log(f"table {physical} exists")
        continue
    keys = [table["hash_key"], table.get("range_key")]
    indexes = table["global_secondary_indexes"]
    for index in indexes.values():
        keys += [index["hash_key"], index.get("range_key")]
    attributes = [{"AttributeName": k, "AttributeType": "S"} for k in dict.fromkeys(k for k in keys if k)]

    def key_schema(spec):
        schema_ = [{"AttributeName": spec["hash_key"], "KeyType": "HASH"}]
        if spec.get("range_key"):
            schema_.append({"AttributeName": spec["range_key"], "KeyType": "RANGE"})
        return schema_

    args = [
        "dynamodb", "create-table",
        "--table-name", physical,
        "--billing-mode", "PAY_PER_REQUEST",
        "--attribute-definitions", json.dumps(attributes),
        "--key-schema", json.dumps(key_schema(table)),
    ]
    if indexes:
        args += ["--global-secondary-indexes", json.dumps([
            {"IndexName": index_name, "KeySchema": key_schema(index), "Projection": {"ProjectionType": "ALL"}}
            for index_name, index in indexes.items()
        ])]
    if table["stream"]:
        args += ["--stream-specification", json.dumps({"StreamEnabled": True, "StreamViewType": table["stream"]})]
    aws(*args)
    aws("dynamodb", "wait", "table-exists", "--table-name", physical)
    if table["ttl_attribute"]:
        aws("dynamodb", "update-time-to-live", "--table-name", physical, "--time-to-live-specification",
            json.dumps({"Enabled": True, "AttributeName": table["ttl_attribute"]}))
    try:
        aws("dynamodb", "update-continuous-backups", "--table-name", physical,
            "--point-in-time-recovery-specification", "PointInTimeRecoveryEnabled=true")
    except SystemExit:
        log(f"table {physical}: point-in-time recovery not supported by this emulator, skipped")
    log(f"table {physical} created")


# KMS keys and aliases.
aliases = {a["AliasName"] for a in aws("kms", "list-aliases")["Aliases"]}
for name, key in schema["kms_keys"].items():
    alias = f"alias/{prefix}-{name}"
    if alias in aliases:
        log(f"key {alias} exists")
        continue
    created = aws("kms", "create-key", "--key-spec", key["key_spec"], "--key-usage", key["key_usage"],
                  "--description", f"{prefix}-{name}: {key['purpose']}")
    key_id = created["KeyMetadata"]["KeyId"]
    aws("kms", "create-alias", "--alias-name", alias, "--target-key-id", key_id)
    if key["key_spec"] == "SYMMETRIC_DEFAULT":
        aws("kms", "enable-key-rotation", "--key-id", key_id)
    log(f"key {alias} created ({key['key_spec']}, {key['key_usage']})")


# Secrets Manager secrets: a generated one gets 48 random bytes as base64 (as
# `rampart bootstrap` makes it); the others are created empty and their owners
# write the values.
for name, secret in schema["secrets"].items():
    physical = f"{prefix}/{name}"
    if aws("secretsmanager", "describe-secret", "--secret-id", physical, missing="ResourceNotFoundException"):
        log(f"secret {physical} exists")
        continue
    value = []
    if secret.get("generated"):
        value = ["--secret-string", base64.b64encode(secrets.token_bytes(48)).decode()]
    aws("secretsmanager", "create-secret", "--name", physical, "--description", secret["purpose"], *value)
    log(f"secret {physical} created" + (" with a generated value" if value else " (no value yet)"))


# Cognito user pool and app client: LocalStack Pro only.
pool = schema["user_pool"]
# The schema does not (yet) say which secret holds the app client secret; this
# is the same name terraform/environments/dev passes to the identity module.
CLIENT_SECRET = "auth/cognito-client-secret"
if CLIENT_SECRET not in schema["secrets"]:
    raise SystemExit(f"[rampart provision] schema has no secret {CLIENT_SECRET!r}")
probe = subprocess.run([*cli, "cognito-idp", "list-user-pools", "--max-results", "1", "--output", "json"],
                       capture_output=True, text=True)
if probe.returncode != 0:
    log("cognito-idp is not available (LocalStack community): no user pool; use the embedded identity provider or moto")
    raise SystemExit(0)

pool_name = f"{prefix}-{pool['name']}"
existing = [p for p in every("cognito-idp", "list-user-pools", key="UserPools") if p["Name"] == pool_name]
if existing:
    pool_id = existing[0]["Id"]
    log(f"user pool {pool_name} exists ({pool_id})")
else:
    created = aws(
        "cognito-idp", "create-user-pool",
        "--pool-name", pool_name,
        "--username-attributes", *pool["username_attributes"],
        "--username-configuration", json.dumps({"CaseSensitive": pool["username_case_sensitive"]}),
        "--mfa-configuration", pool["mfa"],
        # As Terraform's identity module, all from the schema: NIST SP 800-63B length and a
        # block list (the auth API checks those), no composition rules; recovery through the
        # auth API's own codes, so Cognito sends none of its own.
        "--policies", json.dumps({"PasswordPolicy": {
            "MinimumLength": pool["password_minimum_length"],
            "RequireUppercase": pool["password_require_uppercase"],
            "RequireLowercase": pool["password_require_lowercase"],
            "RequireNumbers": pool["password_require_numbers"],
            "RequireSymbols": pool["password_require_symbols"],
            "TemporaryPasswordValidityDays": pool["temporary_password_validity_days"],
        }}),
        # The schema lists the mechanisms in order of priority (1 first).
        "--account-recovery-setting", json.dumps({"RecoveryMechanisms": [
            {"Name": name, "Priority": priority}
            for priority, name in enumerate(pool["account_recovery_mechanisms"], start=1)
        ]}),
    )
    pool_id = created["UserPool"]["Id"]
    if pool["mfa"] != "OFF":
        aws("cognito-idp", "set-user-pool-mfa-config", "--user-pool-id", pool_id,
            "--software-token-mfa-configuration", "Enabled=true", "--mfa-configuration", pool["mfa"])
    log(f"user pool {pool_name} created ({pool_id})")

client_name = f"{prefix}-{pool['client_name']}"
clients = every("cognito-idp", "list-user-pool-clients", "--user-pool-id", pool_id, key="UserPoolClients")
existing = [c for c in clients if c["ClientName"] == client_name]
if existing:
    client_id = existing[0]["ClientId"]
    log(f"app client {client_name} exists ({client_id})")
else:
    created = aws(
        "cognito-idp", "create-user-pool-client",
        "--user-pool-id", pool_id,
        "--client-name", client_name,
        "--generate-secret" if pool["generate_client_secret"] else "--no-generate-secret",
        "--explicit-auth-flows", *pool["explicit_auth_flows"],
        "--prevent-user-existence-errors", pool["prevent_user_existence_errors"],
        "--enable-token-revocation" if pool["enable_token_revocation"] else "--no-enable-token-revocation",
        "--access-token-validity", str(pool["access_token_validity"]),
        "--id-token-validity", str(pool["id_token_validity"]),
        "--refresh-token-validity", str(pool["refresh_token_validity"]),
        "--token-validity-units", json.dumps({
            "AccessToken": pool["token_validity_units"]["access_token"],
            "IdToken": pool["token_validity_units"]["id_token"],
            "RefreshToken": pool["token_validity_units"]["refresh_token"],
        }),
    )["UserPoolClient"]
    client_id = created["ClientId"]
    log(f"app client {client_name} created ({client_id})")
    if pool["generate_client_secret"]:
        aws("secretsmanager", "put-secret-value", "--secret-id", f"{prefix}/{CLIENT_SECRET}",
            "--secret-string", created["ClientSecret"])
        log(f"secret {prefix}/{CLIENT_SECRET} set to the app client secret")

print(f"RAMPART_AWS__USER_POOL_ID={pool_id}")
print(f"RAMPART_AWS__USER_POOL_CLIENT_ID={client_id}")


# Lambda functions and the REST API in front of the auth function.
API_FUNCTION = "auth"  # the crate functions/auth, not a schema name
lambda_dir = os.environ.get("RAMPART_LAMBDA_DIR", "/etc/rampart/lambda")
zips = {os.path.basename(os.path.dirname(path)).removeprefix("rampart-"): path
        for path in sorted(glob.glob(os.path.join(lambda_dir, "rampart-*", "bootstrap.zip")))}
if API_FUNCTION not in zips:
    log(f"no rampart-{API_FUNCTION}/bootstrap.zip under {lambda_dir}: functions not deployed "
        "(run scripts/build-lambdas and mount target/lambda/<arch> there)")
    raise SystemExit(0)

region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
account = aws("sts", "get-caller-identity")["Account"]

api_name = f"{prefix}-api"
stage = "local"
apis = [a for a in aws("apigateway", "get-rest-apis", "--limit", "500")["items"] if a["name"] == api_name]
if apis:
    api_id = apis[0]["id"]
    log(f"REST API {api_name} exists ({api_id})")
else:
    api_id = aws("apigateway", "create-rest-api", "--name", api_name,
                 "--endpoint-configuration", "types=REGIONAL")["id"]
    log(f"REST API {api_name} created ({api_id})")
# The public address the tokens name as their issuer, as the domain name does on AWS.
issuer = os.environ.get("RAMPART_ISSUER") or f"http://{api_id}.execute-api.localhost.localstack.cloud:4566/{stage}"

role_name = f"{prefix}-lambda"
role = aws("iam", "get-role", "--role-name", role_name, missing="NoSuchEntity")
if role:
    log(f"role {role_name} exists")
else:
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"Service": "lambda.amazonaws.com"}}]}
    role = aws("iam", "create-role", "--role-name", role_name, "--assume-role-policy-document", json.dumps(trust))
    log(f"role {role_name} created (LocalStack does not enforce IAM unless asked to)")
role_arn = role["Role"]["Arn"]

# terraform/platform's function_environment, with the emulator's values.
environment = {
    "RAMPART_BACKEND": "aws",
    "RAMPART_RESOURCE_PREFIX": prefix,
    "RAMPART_AWS__USER_POOL_ID": pool_id,
    "RAMPART_AWS__USER_POOL_CLIENT_ID": client_id,
    "RAMPART_MAIL__SENDER": os.environ.get("RAMPART_MAIL_SENDER", "no-reply@example.com"),
    "RAMPART_TELEMETRY__LOG_FORMAT": "json",
    "RAMPART_TOKENS__ISSUER": issuer,
}
unknown = set(environment) - set(schema["environment"])
if unknown:
    raise SystemExit(f"[rampart provision] not in the schema's environment: {sorted(unknown)}")

ELF_ARCHITECTURES = {0x3E: "x86_64", 0xB7: "arm64"}
function_arns = {}
for crate, path in zips.items():
    name = f"{prefix}-{crate}"
    with zipfile.ZipFile(path) as packed:
        machine = int.from_bytes(packed.read("bootstrap")[18:20], "little")
    architecture = ELF_ARCHITECTURES.get(machine)
    if not architecture:
        raise SystemExit(f"[rampart provision] {path}: bootstrap is not an x86_64 or arm64 ELF binary")
    code_sha = base64.b64encode(hashlib.sha256(open(path, "rb").read()).digest()).decode()
    settings = ["--environment", json.dumps({"Variables": environment})]
    existing = aws("lambda", "get-function", "--function-name", name, missing="ResourceNotFoundException")
    if not existing:
        created = aws("lambda", "create-function", "--function-name", name, "--runtime", "provided.al2023",
                      "--handler", "bootstrap", "--architectures", architecture, "--role", role_arn,
                      "--zip-file", f"fileb://{path}", "--timeout", "10", "--memory-size", "256", *settings)
        function_arns[crate] = created["FunctionArn"]
        log(f"function {name} created ({architecture})")
        continue
    configuration = existing["Configuration"]
    function_arns[crate] = configuration["FunctionArn"]
    # A new architecture comes with new code: update-function-code takes both.
    current = configuration["CodeSha256"] == code_sha and configuration.get("Architectures") == [architecture]
    configured = configuration.get("Environment", {}).get("Variables") == environment
    if not current:
        aws("lambda", "wait", "function-updated-v2", "--function-name", name)
        aws("lambda", "update-function-code", "--function-name", name, "--zip-file", f"fileb://{path}",
            "--architectures", architecture)
        log(f"function {name} code updated ({architecture})")
    if not configured:
        aws("lambda", "wait", "function-updated-v2", "--function-name", name)
        aws("lambda", "update-function-configuration", "--function-name", name, *settings)
        log(f"function {name} environment updated")
    if current and configured:
        log(f"function {name} exists")

# Every path, and the root, to the auth function (Lambda proxy integration).
auth_uri = f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{function_arns[API_FUNCTION]}/invocations"
resources = aws("apigateway", "get-resources", "--rest-api-id", api_id, "--limit", "500")["items"]
root_id = next(r["id"] for r in resources if r["path"] == "/")
proxy = next((r for r in resources if r["path"] == "/{proxy+}"), None)
proxy_id = proxy["id"] if proxy else aws("apigateway", "create-resource", "--rest-api-id", api_id,
                                         "--parent-id", root_id, "--path-part", "{proxy+}")["id"]
routed = False
root = next(r for r in resources if r["path"] == "/")
for resource_id, resource in ((root_id, root), (proxy_id, proxy or {})):
    # Each part checked apart, so a run stopped half-way is completed by the next.
    if "ANY" not in resource.get("resourceMethods", {}):
        aws("apigateway", "put-method", "--rest-api-id", api_id, "--resource-id", resource_id,
            "--http-method", "ANY", "--authorization-type", "NONE")
        routed = True
    integration = aws("apigateway", "get-integration", "--rest-api-id", api_id, "--resource-id", resource_id,
                      "--http-method", "ANY", missing="NotFoundException")
    if not integration or integration.get("type") != "AWS_PROXY" or integration.get("uri") != auth_uri:
        aws("apigateway", "put-integration", "--rest-api-id", api_id, "--resource-id", resource_id,
            "--http-method", "ANY", "--type", "AWS_PROXY", "--integration-http-method", "POST", "--uri", auth_uri)
        routed = True
if routed:
    # Already granted by an earlier run: ResourceConflictException, nothing to do.
    aws("lambda", "add-permission", "--function-name", f"{prefix}-{API_FUNCTION}", "--statement-id", "RestApiInvokes",
        "--action", "lambda:InvokeFunction", "--principal", "apigateway.amazonaws.com",
        "--source-arn", f"arn:aws:execute-api:{region}:{account}:{api_id}/*/*/*", missing="ResourceConflictException")
    aws("apigateway", "create-deployment", "--rest-api-id", api_id, "--stage-name", stage)
    log(f"REST API {api_name}: every path to {prefix}-{API_FUNCTION}, stage {stage} created")
else:
    log(f"REST API {api_name}: routes exist")
print(f"RAMPART_API_URL={issuer}")
PY
