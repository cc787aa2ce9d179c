#!/usr/bin/env python3
"""Cross-check of the IAM grants in Terraform against the AWS calls in the Rust code.

    .venv/bin/python scripts/check_iam.py [ROOT_DIR ...]

Default: every root configuration directly under terraform/ that defines the locals below or
composes modules/functions (terraform/platform; the pipeline's terraform/delivery has neither
and is skipped).

1. The AWS SDK operations the Rust code calls. The operations of each AWS SDK crate the
   workspace uses, their exact API names, the service's SigV4 signing name (= the IAM action
   prefix for these services: dynamodb, kms, cognito-idp, secretsmanager, ses for SES v2) and
   whether the service evaluates IAM for them at all are read from the SDK crate sources in the
   local Cargo registry, at the versions Cargo.lock pins (so `cargo fetch` or any build first;
   no network here). A call is `.<operation>()` in non-test source of a crate that depends on
   that SDK, in a file that names the SDK crate (or on a receiver named `*client*`).
2. The crate graph (normal dependencies of each workspace Cargo.toml, by path) attributes every
   call to the components that link it: the Lambdas (functions/<name>) and the EKS services
   (services/<name>). EXCLUSIONS below removes, with the reason, calls a component links but
   cannot reach (operator commands, other backends). Some calls need IAM actions of their own
   (a transaction needs the per-item actions; a secret under a customer managed key needs KMS).
3. What Terraform grants: the environment locals `function_policy_statements` (keys = the
   crates in functions/) and `service_policy_statements` (core, auth-proxy), each a list of
   {sid, actions, resources[, conditions]}, which the environment passes to modules/functions and modules/eks.
4. Checks: every action a component calls is granted to it; every granted action is one it
   calls; no `*` or wildcard action; no `*` resource; each resource is a reference to the
   output of the module that owns that service's resources; every crate in functions/ has an
   entry in the functions map.

Prints one line per problem and exits 1; on success prints, per component, what it calls.
Limitation: actions are checked per component, not per resource (which table or key an action
is granted on is checked only for its owning module, not for the exact table or key).
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from collections import defaultdict
from pathlib import Path

try:
    import hcl2
except ImportError:  # pragma: no cover - environment problem, not a check failure
    sys.exit("check_iam: the `hcl2` module is missing; run with the venv from scripts/requirements-dev.txt")

ROOT = Path(__file__).resolve().parent.parent
ROOTS = ROOT / "terraform"
COMPONENT_DIRS = ("functions", "services")

FUNCTION_LOCAL = "function_policy_statements"
SERVICE_LOCAL = "service_policy_statements"

# Calls a component links but cannot make: (file, SDK operation or "*", components or "*", why).
# Every entry must still match a call, so a stale one is reported.
ALL = "*"
EXCLUSIONS: list[tuple[str, str, str | tuple[str, ...], str]] = [
    (
        "crates/store/src/dynamodb/provision.rs", ALL, ALL,
        "table creation and TTL set-up, run only by `rampart bootstrap` (Terraform's data module makes the tables)",
    ),
    (
        "crates/identity/src/cognito/provision.rs", ALL, ALL,
        "user pool and app client creation, run only by `rampart bootstrap` (Terraform's identity module makes them)",
    ),
    (
        "crates/tokens/src/kms.rs", "describe_key", ALL,
        "provision_keys: `rampart bootstrap` only (Terraform's keys module makes the keys)",
    ),
    (
        "crates/tokens/src/kms.rs", "create_alias", ALL,
        "provision_keys: `rampart bootstrap` only",
    ),
    (
        "crates/tokens/src/kms.rs", "enable_key_rotation", ALL,
        "provision_keys: `rampart bootstrap` only",
    ),
    (
        "crates/tokens/src/kms.rs", "create_key", ALL,
        "KmsKeys::create, called only by KeyRing::rotate from the operator command `rampart keys rotate`",
    ),
    (
        "crates/tokens/src/kms.rs", "get_public_key", ("authorizer", "auth-proxy", "core"),
        "these link rampart-tokens through rampart-verifier for JWS verification against a JWKS; the KMS "
        "signer is built only by rampart_tokens::key_source, which only the auth function calls",
    ),
    (
        "crates/tokens/src/kms.rs", "sign", ("authorizer", "auth-proxy", "core"),
        "as get_public_key: only the auth function signs",
    ),
    (
        "crates/secrets/src/aws.rs", "put_secret_value", ALL,
        "SecretSink::put, used only by `rampart bootstrap` (identity::provision, secrets::provision); "
        "rotate-secret calls PutSecretValue from its own code",
    ),
    (
        "crates/secrets/src/aws.rs", "create_secret", ALL,
        "SecretSink::put when the secret is missing: `rampart bootstrap` only",
    ),
    (
        "crates/secrets/src/aws.rs", "get_secret_value", ("authorizer", "auth-proxy", "rotate-secret"),
        "SecretsManagerSource is built only by rampart_secrets::connect (auth, core); authorizer and "
        "auth-proxy link rampart-secrets for the Vault adapter (tokens' Transit signer, pki), rotate-secret "
        "only for generate() and reads versions with its own client",
    ),
    (
        "crates/identity/src/cognito/mod.rs", "admin_disable_user", ("auth",),
        "App::disable_user is called only by the operator command `rampart users disable` (no route)",
    ),
]

# IAM actions an SDK operation needs besides its own (or instead of it).
# DynamoDB has no TransactWriteItems/TransactGetItems action: each item is authorised as the
# single-item action (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html);
# which kinds a transaction holds is read from the item builders in the calling file.
TRANSACT_ITEMS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}
# Secrets Manager decrypts and encrypts a secret under its customer managed key (the keys module's
# storage key) with the caller's permissions, so the caller needs these KMS actions too
# (https://docs.aws.amazon.com/secretsmanager/latest/userguide/security-encryption.html).
IMPLIED = {
    "secretsmanager:GetSecretValue": ("kms:Decrypt",),
    "secretsmanager:PutSecretValue": ("kms:GenerateDataKey", "kms:Decrypt"),
    "secretsmanager:CreateSecret": ("kms:GenerateDataKey", "kms:Decrypt"),
}
# The module output each service's resources must come from (no literal ARNs, no other module).
RESOURCE_OUTPUTS = {
    "dynamodb": re.compile(r"^module\.data\.dynamodb_table_arns\["),
    "kms": re.compile(r"^module\.keys\.(kms_key_arns\[|storage_kms_key_arn$)"),
    "secretsmanager": re.compile(r"^module\.secrets\.secretsmanager_secret_arns\["),
    "ses": re.compile(r"^module\.mail\.(email_identity_arn|configuration_set_arn)$"),
    "cognito-idp": re.compile(r"^module\.identity\.user_pool_arn$"),
}
# The one wildcard a resource may carry: the indexes of a referenced table (Query on a GSI).
INDEX_SUFFIX = "/index/*"
NO_IAM_PHRASE = "doesn't evaluate Identity and Access Management"

problems: list[str] = []


def fail(message: str) -> None:
    problems.append(message)


def rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- Rust side


def strip_rust(text: str) -> str:
    """The source with comments, string and char literals blanked (line breaks kept)."""
    out: list[str] = []
    i, n = 0, len(text)

    def blank(segment: str) -> str:
        return "".join("\n" if c == "\n" else " " for c in segment)

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end == -1 else end
            out.append(blank(text[i:end]))
            i = end
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(blank(text[i:j]))
            i = j
        elif (m := re.match(r'b?r(#*)"', text[i:i + 40])) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            close = '"' + m.group(1)
            end = text.find(close, i + m.end())
            end = n if end == -1 else end + len(close)
            out.append(blank(text[i:end]))
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(blank(text[i:j + 1]))
            i = j + 1
        elif c == "'" and (m := re.match(r"'(\\.[^']*|[^\\'\n])'", text[i:i + 12])):
            out.append(blank(m.group(0)))
            i += m.end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


def without_test_items(code: str) -> tuple[str, list[str]]:
    """Blanks `#[cfg(test)]` items; returns the code and the names of `#[cfg(test)] mod x;` files."""
    test_modules = []
    while m := re.search(r"#\s*\[\s*cfg\s*\(\s*test\s*\)\s*\]", code):
        # The item ends at its `;` or its `{...}` block; a field or match arm at its `,` or at
        # the enclosing `}`.
        j, parens = m.end(), 0
        while j < len(code) and not (parens == 0 and code[j] in ";{,}"):
            parens += {"(": 1, "[": 1, ")": -1, "]": -1}.get(code[j], 0)
            j += 1
        if j >= len(code):
            break
        if code[j] in ",}":
            end = j
        elif code[j] == ";":
            if mod := re.search(r"\bmod\s+(\w+)\s*$", code[m.end():j]):
                test_modules.append(mod.group(1))
            end = j + 1
        else:
            depth, end = 0, j
            while end < len(code):
                depth += {"{": 1, "}": -1}.get(code[end], 0)
                end += 1
                if depth == 0:
                    break
        code = code[:m.start()] + "".join("\n" if ch == "\n" else " " for ch in code[m.start():end]) + code[end:]
    return code, test_modules


def cargo_home() -> Path:
    return Path(os.environ.get("CARGO_HOME") or Path.home() / ".cargo")


class Sdk:
    """One aws-sdk-* crate: its operations (snake_case -> API name), IAM prefix, no-IAM operations."""

    def __init__(self, crate: str, source: Path) -> None:
        self.crate = crate
        self.module = crate.replace("-", "_")
        names = set()
        for path in (source / "src").rglob("*.rs"):
            names.update(re.findall(r'SigningName::from_static\("([a-z0-9-]+)"\)', path.read_text(encoding="utf-8")))
        if len(names) != 1:
            sys.exit(f"check_iam: cannot tell the signing name of {crate} (found {sorted(names) or 'none'})")
        self.prefix = names.pop()
        self.operations: dict[str, str] = {}
        self.no_iam: set[str] = set()
        for op_dir in sorted(p for p in (source / "src" / "operation").iterdir() if p.is_dir()):
            spec = op_dir.with_suffix(".rs").read_text(encoding="utf-8")
            api = re.search(r'\.operation_name\("([A-Za-z0-9]+)"\)', spec)
            if not api:
                sys.exit(f"check_iam: no operation name in {op_dir.with_suffix('.rs')}")
            self.operations[op_dir.name] = api.group(1)
            builders = op_dir / "builders.rs"
            if builders.exists() and NO_IAM_PHRASE in builders.read_text(encoding="utf-8"):
                self.no_iam.add(op_dir.name)


def load_sdks() -> dict[str, Sdk]:
    lock = tomllib.loads((ROOT / "Cargo.lock").read_text(encoding="utf-8"))
    sdks: dict[str, Sdk] = {}
    for package in lock.get("package", []):
        name = package["name"]
        if not name.startswith("aws-sdk-"):
            continue
        found = sorted(cargo_home().glob(f"registry/src/*/{name}-{package['version']}"))
        if not found:
            sys.exit(
                f"check_iam: {name} {package['version']} is not in {cargo_home()}/registry/src; "
                "run `cargo fetch --locked` (or any build) first"
            )
        sdks[name] = Sdk(name, found[-1])
    return sdks


class Crate:
    def __init__(self, directory: Path, name: str, deps: set[str], sdk_deps: set[str]) -> None:
        self.dir = directory
        self.name = name
        self.deps = deps  # names of workspace crates
        self.sdk_deps = sdk_deps  # aws-sdk-* crate names


def load_workspace() -> dict[str, Crate]:
    manifest = tomllib.loads((ROOT / "Cargo.toml").read_text(encoding="utf-8"))
    workspace = manifest["workspace"]
    shared = workspace.get("dependencies", {})
    crates: dict[str, Crate] = {}
    path_names: dict[Path, str] = {}
    raw: dict[str, tuple[Path, dict]] = {}
    for member in workspace["members"]:
        directory = (ROOT / member).resolve()
        toml = tomllib.loads((directory / "Cargo.toml").read_text(encoding="utf-8"))
        name = toml["package"]["name"]
        path_names[directory] = name
        raw[name] = (directory, toml)
    for name, (directory, toml) in raw.items():
        # Normal dependencies only: dev-dependencies never reach a deployed binary.
        tables = [toml.get("dependencies", {})]
        tables += [t.get("dependencies", {}) for t in toml.get("target", {}).values()]
        deps, sdk_deps = set(), set()
        for table in tables:
            for dep, spec in table.items():
                spec = spec if isinstance(spec, dict) else {"version": spec}
                if spec.get("workspace"):
                    base = shared.get(dep, {})
                    spec = {**(base if isinstance(base, dict) else {"version": base}), **spec}
                    base_dir = ROOT
                else:
                    base_dir = directory
                dep_name = spec.get("package", dep)
                if "path" in spec:
                    deps.add(path_names.get((base_dir / spec["path"]).resolve(), dep_name))
                elif dep_name.startswith("aws-sdk-"):
                    sdk_deps.add(dep_name)
        crates[name] = Crate(directory, name, deps, sdk_deps)
    return crates


def components(crates: dict[str, Crate]) -> dict[str, Crate]:
    """Component name (directory under functions/ or services/) -> its crate."""
    found = {}
    for crate in crates.values():
        parent = crate.dir.parent
        if parent.parent == ROOT and parent.name in COMPONENT_DIRS:
            found[crate.dir.name] = crate
    return found


def closure(crates: dict[str, Crate], root: str) -> set[str]:
    seen, todo = set(), [root]
    while todo:
        name = todo.pop()
        if name in seen or name not in crates:
            continue
        seen.add(name)
        todo.extend(crates[name].deps)
    return seen


class Call:
    def __init__(self, crate: str, file: str, line: int, sdk: Sdk, op: str, actions: tuple[str, ...]) -> None:
        self.crate, self.file, self.line, self.sdk, self.op, self.actions = crate, file, line, sdk, op, actions

    @property
    def iam_authorized(self) -> bool:
        return self.op not in self.sdk.no_iam

    def where(self) -> str:
        return f"{self.file}:{self.line} .{self.op}()"


def find_calls(crate: Crate, sdks: dict[str, Sdk]) -> list[Call]:
    mine = [sdks[name] for name in sorted(crate.sdk_deps) if name in sdks]
    if not mine:
        return []
    sources: dict[Path, str] = {}
    skipped: set[Path] = set()
    for path in sorted((crate.dir / "src").rglob("*.rs")):
        code, test_mods = without_test_items(strip_rust(path.read_text(encoding="utf-8")))
        sources[path] = code
        module_dir = path.parent if path.name in ("mod.rs", "lib.rs", "main.rs") else path.with_suffix("")
        for mod in test_mods:
            skipped.update({module_dir / f"{mod}.rs"} | set((module_dir / mod).rglob("*.rs")))
    calls: list[Call] = []
    for path, code in sources.items():
        if path in skipped:
            continue
        named = [sdk for sdk in mine if re.search(rf"\b{sdk.module}\b", code)]
        for m in re.finditer(r"\.\s*([a-z][a-z0-9_]*)\s*\(\s*\)", code):
            op = m.group(1)
            # The identifier before the dot: `client` in `self.client.op()` and `(self.client.op())`.
            before = re.search(r"(\w+)[\s()]*$", code[max(0, m.start() - 80):m.start()])
            receiver = before.group(1) if before else ""
            candidates = [sdk for sdk in mine if op in sdk.operations]
            if not candidates:
                continue
            on_client = "client" in receiver.lower()
            # In a file that names SDK crates, an operation of those; elsewhere (or an operation
            # of another SDK) only on a receiver that is evidently a client.
            candidates = [sdk for sdk in candidates if sdk in named] or (candidates if on_client else [])
            if not candidates:
                continue
            line = code.count("\n", 0, m.start(1)) + 1
            if len(candidates) != 1:
                fail(f"{rel(path)}:{line}: .{op}() is an operation of {', '.join(s.crate for s in candidates)}: cannot tell which")
                continue
            sdk = candidates[0]
            api = sdk.operations[op]
            if sdk.prefix == "dynamodb" and api in ("TransactWriteItems", "TransactGetItems"):
                kinds = ["Get"] if api == "TransactGetItems" else re.findall(r"\b(Put|Update|Delete|ConditionCheck)::builder\s*\(", code)
                actions = tuple(sorted({TRANSACT_ITEMS.get(k, "dynamodb:GetItem") for k in kinds}))
                if not actions:
                    fail(f"{rel(path)}:{line}: {api} with no item builder in the file: cannot tell which item actions it needs")
            else:
                actions = (f"{sdk.prefix}:{api}",)
            calls.append(Call(crate.name, rel(path), line, sdk, op, actions))
    return calls


def excluded(call: Call, component: str, used: set[int]) -> bool:
    for index, (file, op, who, _why) in enumerate(EXCLUSIONS):
        if file == call.file and op in (ALL, call.op) and (who == ALL or component in who):
            used.add(index)
            return True
    return False


def required_actions(
    crates: dict[str, Crate], sdks: dict[str, Sdk]
) -> tuple[dict[str, dict[str, list[str]]], dict[str, set[str]]]:
    """Per component: IAM action -> where it comes from; and the called operations IAM does not gate."""
    calls_by_crate = {name: find_calls(crate, sdks) for name, crate in crates.items()}
    used: set[int] = set()
    required: dict[str, dict[str, list[str]]] = {}
    ungated: dict[str, set[str]] = {}
    for component, crate in sorted(components(crates).items()):
        actions: dict[str, list[str]] = defaultdict(list)
        free: set[str] = set()
        for name in sorted(closure(crates, crate.name)):
            for call in calls_by_crate[name]:
                if excluded(call, component, used):
                    continue
                if not call.iam_authorized:
                    free.add(f"{call.sdk.prefix}:{call.sdk.operations[call.op]}")
                    continue
                for action in call.actions:
                    actions[action].append(call.where())
                    for implied in IMPLIED.get(action, ()):
                        actions[implied].append(f"{call.where()} ({action} under a customer managed key)")
        required[component] = dict(actions)
        ungated[component] = free
    for index, (file, op, who, _why) in enumerate(EXCLUSIONS):
        if index not in used:
            fail(f"check_iam.py EXCLUSIONS: ({file}, {op}, {who}) matches no call any more: remove it")
    return required, ungated


# --------------------------------------------------------------------------- Terraform side


def unwrap_map(value: object) -> object:
    """hcl2 wraps an object value in a one-element list."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        return value[0]
    return value


def reference(expression: str) -> tuple[str, str] | None:
    """`${module.x.y["k"]}` -> ("module.x.y[\"k\"]", ""); `"${module.x.y}/index/*"` -> (…, "/index/*")."""
    text = expression
    # bc-python-hcl2 renders "${a}/b" as ${"${a}/b"}.
    if m := re.fullmatch(r'\$\{"(.*)"\}', text, re.S):
        text = m.group(1)
    if m := re.fullmatch(r"\$\{([^${}]+)\}(.*)", text, re.S):
        inner = m.group(1).strip()
        # [for k, v in X : module.y.z[k] if ...]: the value expression is the reference.
        if f := re.fullmatch(r"\[\s*for\s[^:]+:\s*(.+?)(?:\s+if\s.*)?\]", inner, re.S):
            inner = f.group(1).strip()
        return inner, m.group(2)
    return None


class Environment:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.locals: dict[str, object] = {}
        self.modules: dict[str, dict] = {}
        for tf in sorted(path.glob("*.tf")):
            try:
                doc = hcl2.load(tf.open(encoding="utf-8"))
            except Exception as exc:  # lark raises several error types
                fail(f"{rel(tf)}: HCL parse error: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}")
                continue
            for entry in doc.get("locals", []):
                for key, value in entry.items():
                    if not key.startswith("__"):
                        self.locals[key] = value
            for entry in doc.get("module", []):
                for name, body in entry.items():
                    self.modules[name] = body

    def module_with_source(self, suffix: str) -> tuple[str, dict] | None:
        for name, body in self.modules.items():
            source = body.get("source", "")
            source = source[0] if isinstance(source, list) else source
            if str(source).rstrip("/").endswith(suffix):
                return name, body
        return None


def statements_of(env: Environment, local: str, expected: set[str]) -> dict[str, list[dict]]:
    where = f"{rel(env.path)}: local.{local}"
    value = unwrap_map(env.locals.get(local))
    if not isinstance(value, dict):
        fail(f"{where}: missing, or not a literal map keyed by component")
        return {}
    value = {k: v for k, v in value.items() if not k.startswith("__")}
    if set(value) != expected:
        fail(f"{where}: keys {sorted(value)}, expected exactly {sorted(expected)}")
    result = {}
    for component, statements in value.items():
        if not isinstance(statements, list) or not all(isinstance(s, dict) for s in statements):
            fail(f"{where}[{component!r}]: not a literal list of {{sid, actions, resources}} objects")
            continue
        result[component] = statements
    return result


def check_statements(env: Environment, component: str, statements: list[dict], required: dict[str, list[str]]) -> set[str]:
    where = f"{rel(env.path)}: {component}"
    granted: set[str] = set()
    sids: set[str] = set()
    for statement in statements:
        sid = statement.get("sid")
        keys = set(statement) - {"__start_line__", "__end_line__"}
        # A condition only narrows an Allow, so it may be added freely.
        if not {"sid", "actions", "resources"} <= keys <= {"sid", "actions", "resources", "conditions"}:
            fail(f"{where}: statement {sid!r} must have sid, actions and resources (and optionally conditions)")
        if not isinstance(sid, str) or not re.fullmatch(r"[A-Za-z0-9]+", sid) or sid in sids:
            fail(f"{where}: statement sid {sid!r} must be alphanumeric and unique")
        sids.add(str(sid))
        actions = statement.get("actions") or []
        resources = statement.get("resources") or []
        # A for expression (or any single expression) in place of the list.
        resources = [resources] if isinstance(resources, str) else resources
        if not actions or not resources:
            fail(f"{where}: statement {sid!r} needs at least one action and one resource")
        services = set()
        for action in actions:
            if not isinstance(action, str) or not re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9]+", action):
                fail(f"{where}: statement {sid!r}: action {action!r} is a wildcard or not service:Action")
                continue
            granted.add(action)
            services.add(action.split(":")[0])
        for resource in resources:
            if resource == "*" or not isinstance(resource, str):
                fail(f"{where}: statement {sid!r}: resource {resource!r} is a wildcard or not a string")
                continue
            ref = reference(resource)
            if ref is None:
                fail(f"{where}: statement {sid!r}: resource {resource!r} is not a module output reference")
                continue
            target, suffix = ref
            if suffix not in ("", INDEX_SUFFIX) or (suffix and not RESOURCE_OUTPUTS["dynamodb"].match(target)):
                fail(f"{where}: statement {sid!r}: resource {resource!r}: only a table's {INDEX_SUFFIX} may follow a reference")
            for service in services:
                pattern = RESOURCE_OUTPUTS.get(service)
                if pattern is None:
                    fail(f"{where}: statement {sid!r}: no module owns {service} resources; grant only what the code calls")
                elif not pattern.match(target):
                    fail(f"{where}: statement {sid!r}: {service} actions on {target}, not an output of the module that owns {service} resources")
    for action in sorted(set(required) - granted):
        fail(f"{where}: calls {action} ({required[action][0]}) but it is not granted")
    for action in sorted(granted - set(required)):
        fail(f"{where}: is granted {action}, which it does not call")
    return granted


def functions_map_keys(env: Environment, body: dict) -> set[str] | None:
    value = unwrap_map(body.get("functions"))
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        value = value[0]
    if isinstance(value, dict):
        return {k for k in value if not k.startswith("__")}
    if isinstance(value, str):
        # local.X, or a for expression over local.X / keys(local.X).
        m = re.search(r"local\.([A-Za-z0-9_]+)", value)
        if m and re.fullmatch(r"\$\{\s*local\.\w+\s*\}", value) or (m and re.match(r"\$\{\s*\{\s*for\b", value)):
            local = unwrap_map(env.locals.get(m.group(1)))
            if isinstance(local, dict):
                return {k for k in local if not k.startswith("__")}
    return None


def check_environment(env: Environment, functions: set[str], services: set[str], required: dict) -> dict[str, set[str]]:
    name = rel(env.path)
    granted: dict[str, set[str]] = {}
    for local, expected in ((FUNCTION_LOCAL, functions), (SERVICE_LOCAL, services)):
        for component, statements in statements_of(env, local, expected).items():
            granted[component] = check_statements(env, component, statements, required.get(component, {}))
    for suffix, argument, local in (("modules/functions", "functions", FUNCTION_LOCAL), ("modules/eks", "service_policy_statements", SERVICE_LOCAL)):
        found = env.module_with_source(suffix)
        if found is None:
            fail(f"{name}: no module with source .../{suffix}")
            continue
        module, body = found
        if f"local.{local}" not in str(body.get(argument)):
            fail(f"{name}: module.{module}.{argument} does not take its statements from local.{local}")
        if argument == "functions":
            keys = functions_map_keys(env, body)
            if keys is None:
                fail(f"{name}: cannot read the keys of module.{module}.functions (a literal map, local.X or a for over local.X)")
            else:
                for crate in sorted(functions - keys):
                    fail(f"{name}: functions/{crate} has no entry in module.{module}.functions")
                for extra in sorted(keys - functions):
                    fail(f"{name}: module.{module}.functions[{extra!r}] is not a crate in functions/")
    return granted


def main(argv: list[str]) -> int:
    sdks = load_sdks()
    crates = load_workspace()
    comps = components(crates)
    # From the file system, so a crate left out of the workspace is noticed too.
    functions = {p.parent.name for p in (ROOT / "functions").glob("*/Cargo.toml")}
    services = {p.parent.name for p in (ROOT / "services").glob("*/Cargo.toml")}
    for missing in sorted((functions | services) - set(comps)):
        fail(f"{missing}: has a Cargo.toml but is not a workspace member, so its AWS calls are not analysed")
    required, ungated = required_actions(crates, sdks)

    if argv:
        envs = [Environment(Path(arg)) for arg in argv]
    else:
        envs = [Environment(p) for p in sorted(ROOTS.iterdir()) if p.is_dir() and any(p.glob("*.tf"))]
        envs = [e for e in envs if FUNCTION_LOCAL in e.locals or SERVICE_LOCAL in e.locals or e.module_with_source("modules/functions")]
        if not envs:
            fail(f"no directory under {rel(ROOTS)} defines local.{FUNCTION_LOCAL} / local.{SERVICE_LOCAL}")
    for env in envs:
        check_environment(env, functions, services, required)

    if problems:
        for problem in problems:
            print(problem)
        return 1
    for component in sorted(comps):
        actions = sorted(required[component])
        line = f"{component}: {len(actions)} IAM actions: {', '.join(actions) or 'none'}"
        if ungated[component]:
            line += f"; not IAM-authorised (access-token or public): {', '.join(sorted(ungated[component]))}"
        print(line)
    print(f"check_iam: {len(envs)} environment(s) match the code: {', '.join(rel(e.path) for e in envs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
