#!/usr/bin/env python3
"""Consistency checks between schema/platform.json and the infrastructure code.

Run with the dev venv's python (scripts/check-iac does): it needs the `hcl2`
module, which checkov's pinned bc-python-hcl2 provides.

1. Every Terraform file (and the *.tfvars.example / *.hcl.example files) parses.
2. Every module and environment has main.tf, variables.tf, outputs.tf and
   versions.tf; versions.tf pins Terraform and the AWS provider (~> 5.x or 6.x);
   every variable has a type and a description; every output has a description;
   every module is used by an environment and every module source exists.
   Every reference resolves within its directory, as `terraform validate` would
   check (there is no terraform binary here): var.X to a variable, local.X to a
   local, module.M.O to a module call whose source has output O, data.T.N and
   T.N (aws_*, random_*) to a data source or resource of that directory; and
   every module call passes only variables its module declares, and every one
   it declares without a default; every `moved` block moves to a declared resource.
3. Only root configurations (terraform/platform, terraform/delivery) read the schema (jsondecode(file(".../schema/platform.json")));
   modules take its sections as typed variables, so a module works outside this
   tree. Every table, KMS key and secret in the schema is materialised by a
   Terraform resource: a for_each over the schema section (in a module, over the
   variable an environment passes the section in), or a resource naming it. The
   user pool and app client read every schema user_pool field. Names the
   roots look up in module outputs (e.g. a secret ARN by schema name)
   exist in the schema. Every resource_prefix variable is validated with the
   schema's resource_prefix.pattern, the one Rust checks.
4. Every RAMPART_* variable an environment outputs is named in the schema's
   "environment", and each root outputs every one the Rust code requires on the AWS backend
   (`Settings::require_aws` keys, and tokens.issuer).
5. The LocalStack provisioning script reads the schema instead of repeating it, and it and the
   Rust provisioning (provision_user_pool) read every schema user_pool field, as Terraform does.

Exits 1 with one line per problem.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

try:
    import hcl2
except ImportError:  # pragma: no cover - environment problem, not a check failure
    sys.exit("check_iac: the `hcl2` module is missing; run with the venv from scripts/requirements-dev.txt")

ROOT = Path(__file__).resolve().parent.parent
TERRAFORM = ROOT / "terraform"
SCHEMA_PATH = ROOT / "schema" / "platform.json"

MODULE_FILES = ("main.tf", "variables.tf", "outputs.tf", "versions.tf")
AWS_PROVIDER_CONSTRAINT = re.compile(r"^~>\s*[56]\.\d+(\.\d+)?$")

# Schema section -> resource types that must materialise each of its entries.
SECTIONS = {
    "tables": ("aws_dynamodb_table",),
    "kms_keys": ("aws_kms_key", "aws_kms_alias"),
    "secrets": ("aws_secretsmanager_secret",),
}
# Module output name prefix -> schema section its map keys come from.
OUTPUT_SECTIONS = {
    "dynamodb_table": "tables",
    "kms_key": "kms_keys",
    "kms_alias": "kms_keys",
    "secretsmanager_secret": "secrets",
}
USER_POOL_RESOURCES = ("aws_cognito_user_pool", "aws_cognito_user_pool_client")
# The other two makers of the user pool, and how each reads a schema user_pool field.
USER_POOL_READERS = {
    "localstack/init/ready.d/provision.sh": r"""\bpool\[["']{field}["']\]""",
    "crates/identity/src/cognito/provision.rs": r"\bdefinition\s*\.{field}\b",
}
# Variables every environment must output (the deployed functions cannot start without them).
# Settings the deployed code cannot start without on the AWS backend, beyond those the Rust code
# asks for with `Settings::require_aws(.., "<key>")` (found in the sources): tokens.issuer has a
# loopback default that the AWS backend refuses.
ALSO_REQUIRED_ON_AWS = ("tokens.issuer",)
REQUIRE_AWS_CALL = re.compile(r'require_aws\(\s*&[\w.]+\s*,\s*"([a-z0-9_.]+)"\s*\)')


def env_name(key: str) -> str:
    """The environment variable of a settings key (kernel::config: RAMPART_ prefix, `__` nesting)."""
    return "RAMPART_" + key.replace(".", "__").upper()


def required_env() -> set[str]:
    """Variables the deployed functions need: every require_aws key in non-test Rust source."""
    keys = set(ALSO_REQUIRED_ON_AWS)
    for directory in ("crates", "functions", "services"):
        for path in (ROOT / directory).rglob("*.rs"):
            if "tests" in path.relative_to(ROOT).parts:
                continue
            source = path.read_text(encoding="utf-8").split("#[cfg(test)]")[0]
            keys |= set(REQUIRE_AWS_CALL.findall(source))
    return {env_name(key) for key in keys}

SCHEMA_LOAD = re.compile(r"""^\$\{jsondecode\(file\("\$\{path\.module\}/([^"]+)"\)\)\}$""")
ENV_NAME = re.compile(r"RAMPART_[A-Z0-9_]+")

errors: list[str] = []


def fail(message: str) -> None:
    errors.append(message)


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def text(value: object) -> str:
    """Serialise a parsed HCL value so expressions can be searched."""
    return json.dumps(value, sort_keys=True)


def blocks(doc: dict, kind: str) -> list[tuple[str, dict]]:
    """(name, body) of every `kind "name" {}` block; hcl2 gives a list of one-key dicts."""
    found = []
    for entry in doc.get(kind, []):
        for name, body in entry.items():
            found.append((name, body))
    return found


def first(body: dict, key: str, default: object = None) -> object:
    value = body.get(key, default)
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return value


class Unit:
    """A Terraform module or environment directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.docs: dict[str, dict] = {}
        self.locals: dict[str, object] = {}
        self.resources: list[tuple[str, str, dict]] = []  # (type, name, body)
        self.schema_locals: set[str] = set()
        # Schema section -> `var.<name>` through which an environment passes it in.
        self.section_vars: dict[str, set[str]] = {}

    @property
    def name(self) -> str:
        return rel(self.path)

    def all_text(self) -> str:
        return "\n".join(text(doc) for doc in self.docs.values())


def parse_files() -> dict[Path, Unit]:
    units: dict[Path, Unit] = {}
    files = sorted(p for p in TERRAFORM.rglob("*") if p.is_file() and ".terraform" not in p.parts)
    for path in files:
        is_tf = path.suffix == ".tf"
        if not (is_tf or path.name.endswith((".tfvars.example", ".hcl.example", ".tfvars"))):
            continue
        try:
            with path.open(encoding="utf-8") as handle:
                doc = hcl2.load(handle)
        except Exception as exc:  # hcl2 raises lark errors of several types
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            fail(f"{rel(path)}: HCL parse error: {first_line}")
            continue
        if not is_tf:
            continue
        unit = units.setdefault(path.parent, Unit(path.parent))
        unit.docs[path.name] = doc
        for entry in doc.get("locals", []):
            for key, value in entry.items():
                if not key.startswith("__"):
                    unit.locals[key] = value[0] if isinstance(value, list) and len(value) == 1 else value
        for rtype, rname_body in ((t, b) for entry in doc.get("resource", []) for t, b in entry.items()):
            for rname, body in rname_body.items():
                unit.resources.append((rtype, rname, body))
    return units


def check_conventions(units: dict[Path, Unit]) -> None:
    for unit in units.values():
        for required in MODULE_FILES:
            if not (unit.path / required).is_file():
                fail(f"{unit.name}: missing {required}")
        versions = unit.docs.get("versions.tf", {})
        terraform_blocks = versions.get("terraform", [])
        if terraform_blocks:
            block = terraform_blocks[0]
            if not first(block, "required_version"):
                fail(f"{unit.name}/versions.tf: terraform.required_version is not set")
            providers = {}
            for entry in block.get("required_providers", []):
                for pname, pvalue in entry.items():
                    providers[pname] = pvalue[0] if isinstance(pvalue, list) else pvalue
            aws = providers.get("aws")
            if not isinstance(aws, dict) or aws.get("source") != "hashicorp/aws":
                fail(f"{unit.name}/versions.tf: required_providers.aws with source hashicorp/aws is missing")
            elif not AWS_PROVIDER_CONSTRAINT.match(str(aws.get("version", ""))):
                fail(f"{unit.name}/versions.tf: AWS provider must be pinned ~> 5.x or ~> 6.x, found {aws.get('version')!r}")
        elif (unit.path / "versions.tf").is_file():
            fail(f"{unit.name}/versions.tf: no terraform block")
        for fname, doc in unit.docs.items():
            for vname, body in blocks(doc, "variable"):
                for attribute in ("description", "type"):
                    if not first(body, attribute):
                        fail(f"{unit.name}/{fname}: variable {vname!r} has no {attribute}")
            for oname, body in blocks(doc, "output"):
                if not first(body, "description"):
                    fail(f"{unit.name}/{fname}: output {oname!r} has no description")


def check_resource_prefix_rule(units: dict[Path, Unit], schema: dict) -> None:
    pattern = schema.get("resource_prefix", {}).get("pattern")
    if not pattern:
        fail("schema/platform.json: resource_prefix.pattern is missing")
        return
    wanted = f'can(regex("{pattern}",var.resource_prefix))'
    for unit in units.values():
        for fname, doc in unit.docs.items():
            for vname, body in blocks(doc, "variable"):
                if vname != "resource_prefix":
                    continue
                conditions = [str(first(v, "condition", "")).replace(" ", "") for v in body.get("validation", [])]
                if not any(wanted in condition for condition in conditions):
                    fail(f"{unit.name}/{fname}: variable resource_prefix is not validated with {wanted} (schema resource_prefix.pattern)")


def is_root(unit: Unit) -> bool:
    """A root configuration (one state per environment), as opposed to a module."""
    return unit.path.parent == TERRAFORM


def check_environment_values(units: dict[Path, Unit]) -> None:
    """Environments differ only in their values: each terraform/environments/<env> sets
    the same variables of terraform/platform, every one it requires, and names itself."""
    platform = units.get(TERRAFORM / "platform")
    if platform is None:
        fail("terraform/platform: missing")
        return
    declared = {name: body for doc in platform.docs.values() for name, body in blocks(doc, "variable")}
    required = {name for name, body in declared.items() if "default" not in body}
    seen: dict[str, set[str]] = {}
    for env_dir in sorted(p for p in (TERRAFORM / "environments").iterdir() if p.is_dir()):
        example = env_dir / "terraform.tfvars.example"
        if not example.is_file():
            fail(f"{rel(env_dir)}: missing terraform.tfvars.example")
            continue
        with example.open(encoding="utf-8") as handle:
            values = hcl2.load(handle)
        names = set(values)
        seen[env_dir.name] = names
        for name in sorted(names - set(declared)):
            fail(f"{rel(example)}: sets {name!r}, which terraform/platform does not declare")
        for name in sorted(required - names):
            fail(f"{rel(example)}: does not set {name!r}, which terraform/platform requires")
        environment = first(values, "environment")
        if environment != env_dir.name:
            fail(f"{rel(example)}: environment is {environment!r}, not {env_dir.name!r}")
    if set(seen) != {"dev", "staging", "prod"}:
        fail(f"terraform/environments: expected dev, staging and prod, found {sorted(seen)}")
    if len({frozenset(names) for names in seen.values()}) > 1:
        fail(f"terraform/environments: the environments set different variables: {seen}")


def module_calls(unit: Unit) -> list[tuple[str, Path]]:
    calls = []
    for doc in unit.docs.values():
        for mname, body in blocks(doc, "module"):
            source = str(first(body, "source", ""))
            calls.append((mname, (unit.path / source).resolve()))
    return calls


def check_module_usage(units: dict[Path, Unit]) -> None:
    used: set[Path] = set()
    for unit in units.values():
        for mname, source in module_calls(unit):
            if source not in units:
                fail(f"{unit.name}: module {mname!r} source {rel(source) if source.is_relative_to(ROOT) else source} has no .tf files")
            used.add(source)
    if not [u for u in units.values() if is_root(u)]:
        fail("terraform: no root configuration")
    for unit in units.values():
        if unit.path.parent.name == "modules" and unit.path not in used:
            fail(f"{unit.name}: module is not used by any root configuration")


# What an expression can name, in the JSON text of the parsed files (comments are gone).
REFERENCES = {
    "var": re.compile(r"(?<![\w.])var\.([A-Za-z_][\w-]*)"),
    "local": re.compile(r"(?<![\w.])local\.([A-Za-z_][\w-]*)"),
    "module": re.compile(r"(?<![\w.])module\.([A-Za-z_][\w-]*)\.([A-Za-z_][\w-]*)"),
    "data": re.compile(r"(?<![\w.])data\.([a-z0-9_]+)\.([A-Za-z_][\w-]*)"),
    "resource": re.compile(r"(?<![\w.])((?:aws|random)_[a-z0-9_]+)\.([A-Za-z_][\w-]*)"),
}


def check_references(units: dict[Path, Unit]) -> None:
    for unit in units.values():
        declared = {
            "var": {name for doc in unit.docs.values() for name, _ in blocks(doc, "variable")},
            "local": set(unit.locals),
            "data": {(t, n) for doc in unit.docs.values() for entry in doc.get("data", [])
                     for t, named in entry.items() for n in named},
            "resource": {(t, n) for t, n, _ in unit.resources},
        }
        outputs = {
            mname: {name for doc in units[source].docs.values() for name, _ in blocks(doc, "output")}
            for mname, source in module_calls(unit) if source in units
        }
        # `moved` blocks name addresses, old and new, not values.
        body = "\n".join(text({k: v for k, v in doc.items() if k != "moved"}) for doc in unit.docs.values())
        missing = set()
        for name in REFERENCES["var"].findall(body):
            if name not in declared["var"]:
                missing.add(f"var.{name}")
        for name in REFERENCES["local"].findall(body):
            if name not in declared["local"]:
                missing.add(f"local.{name}")
        for mname, output in REFERENCES["module"].findall(body):
            if mname not in outputs:
                missing.add(f"module.{mname}")
            elif output not in outputs[mname]:
                missing.add(f"module.{mname}.{output}")
        for rtype, name in REFERENCES["data"].findall(body):
            if (rtype, name) not in declared["data"]:
                missing.add(f"data.{rtype}.{name}")
        for rtype, name in REFERENCES["resource"].findall(body):
            if (rtype, name) not in declared["resource"]:
                missing.add(f"{rtype}.{name}")
        for reference in sorted(missing):
            fail(f"{unit.name}: {reference} is referenced but not declared there")
        check_module_arguments(unit, units)
        check_moved(unit, units, declared["resource"])


MOVED_TO = re.compile(r"^\$\{(?:module\.([A-Za-z_][\w-]*)\.)?([a-z0-9_]+)\.([A-Za-z_][\w-]*)(?:\[[^]]*\])?\}$")


def check_moved(unit: Unit, units: dict[Path, Unit], resources: set[tuple[str, str]]) -> None:
    """Each `moved` block's `to` is a resource this directory, or the module it names, declares."""
    sources = dict(module_calls(unit))
    for doc in unit.docs.values():
        for block in doc.get("moved", []):
            target = str(first(block, "to", ""))
            match = MOVED_TO.match(target)
            if not match:
                fail(f"{unit.name}: moved to {target!r}, not a resource address")
                continue
            mname, rtype, rname = match.groups()
            if mname is None:
                known = (rtype, rname) in resources
            else:
                source = sources.get(mname)
                known = source in units and any((t, n) == (rtype, rname) for t, n, _ in units[source].resources)
            if not known:
                fail(f"{unit.name}: moved to {target!r}, which is not declared")


# Arguments of a module block that are Terraform's, not the module's variables.
META_ARGUMENTS = {"source", "version", "providers", "depends_on", "count", "for_each"}


def check_module_arguments(unit: Unit, units: dict[Path, Unit]) -> None:
    for doc in unit.docs.values():
        for mname, body in blocks(doc, "module"):
            source = (unit.path / str(first(body, "source", ""))).resolve()
            if source not in units:
                continue
            variables = {name: spec for child in units[source].docs.values() for name, spec in blocks(child, "variable")}
            passed = {key for key in body if key not in META_ARGUMENTS and not key.startswith("__")}
            for name in sorted(passed - set(variables)):
                fail(f"{unit.name}: module {mname!r} passes {name}, which {rel(source)} does not declare")
            for name in sorted(set(variables) - passed):
                if "default" not in variables[name]:
                    fail(f"{unit.name}: module {mname!r} does not pass {name}, which {rel(source)} requires")


def find_schema_locals(units: dict[Path, Unit]) -> None:
    for unit in units.values():
        for key, value in unit.locals.items():
            match = SCHEMA_LOAD.match(value) if isinstance(value, str) else None
            if not match:
                continue
            target = (unit.path / match.group(1)).resolve()
            if target != SCHEMA_PATH:
                fail(f"{unit.name}: local.{key} reads {match.group(1)}, which is not schema/platform.json")
                continue
            if unit.path.parent.name == "modules":
                fail(f"{unit.name}: local.{key} reads the schema file; a module takes what it needs as variables")
                continue
            unit.schema_locals.add(key)


def find_section_inputs(units: dict[Path, Unit], schema: dict) -> None:
    """Records, in each module, the variables environments pass schema sections in through."""
    sections = [s for s in schema if not s.startswith("$")]
    for unit in units.values():
        for doc in unit.docs.values():
            for _, body in blocks(doc, "module"):
                target = units.get((unit.path / str(first(body, "source", ""))).resolve())
                if target is None:
                    continue
                for argument, value in body.items():
                    value = value[0] if isinstance(value, list) and len(value) == 1 else value
                    for section in sections:
                        if isinstance(value, str) and value.startswith("${") and value[2:-1] in section_aliases(unit, section):
                            target.section_vars.setdefault(section, set()).add(f"var.{argument}")


def section_aliases(unit: Unit, section: str) -> set[str]:
    """Expressions that denote schema[section] in this unit, e.g. local.schema.user_pool, var.user_pool
    and local.pool."""
    exprs = {f"local.{s}.{section}" for s in unit.schema_locals} | unit.section_vars.get(section, set())
    for key, value in unit.locals.items():
        if isinstance(value, str) and value.startswith("${") and value[2:-1] in exprs:
            exprs.add(f"local.{key}")
    return exprs


def check_sections(units: dict[Path, Unit], schema: dict) -> None:
    for section, rtypes in SECTIONS.items():
        entries = schema.get(section, {})
        fields = sorted({field for entry in entries.values() for field in entry})
        for rtype in rtypes:
            covered: set[str] = set()
            for unit in units.values():
                exprs = section_aliases(unit, section)
                for found_type, rname, body in unit.resources:
                    if found_type != rtype:
                        continue
                    for_each = str(first(body, "for_each", ""))
                    if for_each.startswith("${") and for_each[2:-1] in exprs:
                        covered.update(entries)
                        module_text = unit.all_text()
                        for field in fields:
                            if not re.search(rf"\.{re.escape(field)}\b", module_text):
                                fail(f"{unit.name}: {rtype}.{rname} iterates schema {section} but never reads field {field!r}")
                    else:
                        body_text = text(body)
                        covered.update(n for n in entries if re.search(rf"[-/\"]{re.escape(n)}[\"$]", body_text))
            for name in entries:
                if name not in covered:
                    fail(f"schema {section}.{name} is not materialised by any {rtype} (no for_each over the schema section, no resource naming it)")

    pool = schema.get("user_pool")
    if pool:
        fields = sorted(pool)
        found_types: set[str] = set()
        for unit in units.values():
            exprs = section_aliases(unit, "user_pool")
            types_here = {t for t, _, _ in unit.resources if t in USER_POOL_RESOURCES}
            if not types_here:
                continue
            found_types |= types_here
            module_text = unit.all_text()
            for field in fields:
                if not any(re.search(rf"{re.escape(e)}\.{re.escape(field)}\b", module_text) for e in exprs):
                    fail(f"{unit.name}: user pool resources do not read schema user_pool.{field}")
        for rtype in USER_POOL_RESOURCES:
            if rtype not in found_types:
                fail(f"schema user_pool is not materialised: no {rtype} resource")


LOOKUP = re.compile(r"module\.\w+\.(\w+)\[(local\.\w+|\\\"[^\\]+\\\")\]")


def check_lookups(units: dict[Path, Unit], schema: dict) -> None:
    """Names used to index module outputs (e.g. secretsmanager_secret_arns["auth/x"]) exist in the schema."""
    for unit in units.values():
        for match in LOOKUP.finditer(unit.all_text()):
            output, key = match.groups()
            section = next((s for prefix, s in OUTPUT_SECTIONS.items() if output.startswith(prefix)), None)
            if section is None:
                continue
            if key.startswith("local."):
                resolved = unit.locals.get(key[len("local."):])
                if not isinstance(resolved, str):
                    fail(f"{unit.name}: {output}[{key}] does not resolve to a literal name")
                    continue
                key = resolved
            else:
                key = key.strip('\\"')
            if key not in schema.get(section, {}):
                fail(f"{unit.name}: {output}[{key!r}] names no entry of schema {section}")


def env_names_in(value: object) -> set[str]:
    if isinstance(value, dict):
        names = {k for k in value if ENV_NAME.fullmatch(k)}
        for inner in value.values():
            names |= env_names_in(inner)
        return names
    if isinstance(value, list):
        return set().union(*(env_names_in(v) for v in value)) if value else set()
    return set()


def check_environment_outputs(units: dict[Path, Unit], schema: dict) -> None:
    declared = {k for k in schema.get("environment", {}) if not k.startswith("$")}
    for unit in units.values():
        if not (is_root(unit) and unit.schema_locals):
            continue
        exported: set[str] = set()
        for fname, doc in unit.docs.items():
            for oname, body in blocks(doc, "output"):
                if ENV_NAME.fullmatch(oname):
                    exported.add(oname)
                value = first(body, "value")
                exported |= env_names_in(value)
                if isinstance(value, str):
                    for ref in re.findall(r"local\.(\w+)", value):
                        exported |= env_names_in(unit.locals.get(ref))
        for name in sorted(exported - declared):
            fail(f"{unit.name}: outputs {name}, which schema/platform.json \"environment\" does not name")
        for name in sorted(required_env()):
            if name not in exported:
                fail(f"{unit.name}: does not output {name}")


def check_localstack(schema: dict) -> None:
    script = ROOT / "localstack" / "init" / "ready.d" / "provision.sh"
    if not script.is_file():
        fail(f"{rel(script)}: missing")
        return
    # A line may say why a word that is also a schema name is not one there.
    body = "\n".join(line for line in script.read_text(encoding="utf-8").splitlines()
                     if not line.rstrip().endswith("not a schema name"))
    if "platform.json" not in body:
        fail(f"{rel(script)}: does not read schema/platform.json")
    # Secrets are not checked: the schema does not say which secret holds the app
    # client secret, so the script names that one, as the dev environment does.
    for section in ("tables", "kms_keys"):
        for name in schema.get(section, {}):
            if re.search(rf"[\"'/-]{re.escape(name)}[\"']", body):
                fail(f"{rel(script)}: repeats schema {section} name {name!r} instead of reading the schema")
    compose = ROOT / "localstack" / "docker-compose.yml"
    if compose.is_file() and "schema/platform.json" not in compose.read_text(encoding="utf-8"):
        fail(f"{rel(compose)}: does not mount schema/platform.json")


def check_user_pool_readers(schema: dict) -> None:
    fields = [field for field in schema.get("user_pool", {}) if not field.startswith("$")]
    for path, reads in USER_POOL_READERS.items():
        source = ROOT / path
        if not source.is_file():
            fail(f"{path}: missing")
            continue
        body = source.read_text(encoding="utf-8")
        for field in fields:
            if not re.search(reads.format(field=re.escape(field)), body):
                fail(f"{path}: does not read schema user_pool.{field}")


def main() -> int:
    try:
        schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"check_iac: cannot read {rel(SCHEMA_PATH)}: {exc}", file=sys.stderr)
        return 1
    units = parse_files()
    check_conventions(units)
    check_module_usage(units)
    check_references(units)
    find_schema_locals(units)
    find_section_inputs(units, schema)
    check_resource_prefix_rule(units, schema)
    check_sections(units, schema)
    check_lookups(units, schema)
    check_environment_outputs(units, schema)
    check_environment_values(units)
    check_localstack(schema)
    check_user_pool_readers(schema)
    if errors:
        print(f"check_iac: {len(errors)} problem(s):", file=sys.stderr)
        for message in errors:
            print(f"  - {message}", file=sys.stderr)
        return 1
    print(f"check_iac: ok ({len(units)} Terraform directories consistent with {rel(SCHEMA_PATH)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
