"""``docs/security.md``: the hand-written threat model, then what each function (and Step Functions, the
schedules, EventBridge) may do on AWS. Only the part after :data:`MARKER` is generated; the threat model
above it is kept as written.

Generated from ``template.yaml`` as the SAM transform turns it into roles - the same translation the local
stack enforces on every call (``sandbox/local/iam.py``) - so the document, the local checks and a real
``sam deploy`` cannot disagree. ``make lint`` runs ``--check`` and fails when the document drifts::

    python -m tools.security_doc --write docs/security.md
    python -m tools.security_doc --check docs/security.md
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sandbox.local.iam import MANAGED_POLICIES, translate
from sandbox.local.template import load_template

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"


def symbolic(value: Any) -> Any:  # noqa: PLR0911 - one branch per intrinsic
    """An intrinsic as readable text: ``!Ref X`` -> ``${X}``, ``!GetAtt X.Arn`` -> ``${X.Arn}``, ``!Sub`` filled."""
    if isinstance(value, list):
        return [symbolic(item) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            return f"${{{arg}}}"
        if key == "Fn::GetAtt":
            return "${" + (".".join(arg) if isinstance(arg, list) else str(arg)) + "}"
        if key == "Fn::Sub":
            if isinstance(arg, str):
                return arg
            text, variables = arg
            for name, expression in variables.items():
                text = text.replace(f"${{{name}}}", str(symbolic(expression)))
            return text
        if key == "Fn::Join":
            separator, items = arg
            return str(separator).join(str(symbolic(item)) for item in items)
    return {key: symbolic(item) for key, item in value.items()}


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _cell(values: list[Any]) -> str:
    return "<br>".join(f"`{v}`" for v in values)


def _how(permission: dict[str, Any]) -> str:
    """How a public permission is limited: a function URL (and its auth type) only."""
    if "FunctionUrlAuthType" in permission:
        return f" through its function URL (`{permission['Action']}`, auth type {permission['FunctionUrlAuthType']})"
    if permission.get("InvokedViaFunctionUrl"):
        return f" through its function URL only (`{permission['Action']}`, `InvokedViaFunctionUrl`)"
    return ""


def _statement_rows(statements: list[Mapping[str, Any]]) -> list[str]:
    rows = []
    for statement in statements:
        actions = sorted(str(a) for a in _listed(statement.get("Action") or statement.get("NotAction")))
        resources = [str(r) for r in _listed(symbolic(statement.get("Resource", statement.get("NotResource"))))]
        condition = statement.get("Condition")
        condition_text = _cell([json.dumps(symbolic(condition), ensure_ascii=False)]) if condition else ""
        effect = "" if statement.get("Effect") == "Allow" else f"**{statement.get('Effect')}** "
        sid = f"{statement['Sid']}: " if statement.get("Sid") else ""
        rows.append(f"| {effect}{sid}{_cell(actions)} | {_cell(resources)} | {condition_text} |")
    return rows


def _role_section(title: str, role: Mapping[str, Any]) -> list[str]:
    properties = role.get("Properties") or {}
    lines = [f"### {title}", ""]
    trusted = sorted(
        str(service)
        for statement in _listed((properties.get("AssumeRolePolicyDocument") or {}).get("Statement", []))
        for service in _listed((statement.get("Principal") or {}).get("Service", []))
    )
    lines.append(f"Assumed by: {', '.join(f'`{t}`' for t in trusted) or '-'}")
    lines.append("")
    statements = [
        statement
        for policy in properties.get("Policies") or []
        for statement in _listed(policy["PolicyDocument"].get("Statement", []))
    ]
    if statements:
        lines += ["| actions | resources | condition |", "|---|---|---|", *_statement_rows(statements), ""]
    managed = [str(symbolic(arn)).rsplit("/", 1)[-1] for arn in properties.get("ManagedPolicyArns") or []]
    for name in managed:
        actions = sorted({a for s in MANAGED_POLICIES[name][0] for a in _listed(s["Action"])})
        lines.append(f"- AWS managed [`{name}`]({MANAGED_POLICIES[name][1]}): {', '.join(actions)} on `*`")
    if managed:
        lines.append("")
    return lines


def render(template_path: Path = TEMPLATE) -> str:
    translated = translate(load_template(template_path))
    resources: dict[str, Any] = translated["Resources"]
    roles = {logical: r for logical, r in resources.items() if r["Type"] == "AWS::IAM::Role"}
    used: set[str] = set()
    out = [
        "## What each function may do on AWS",
        "",
        "Generated by `python -m tools.security_doc --write docs/security.md` from `template.yaml`, translated",
        "by the SAM transform exactly as `sam deploy` does (`aws-sam-translator`, the version `sam` uses).",
        "The local stack enforces these same roles on every AWS call a function makes (`sandbox/local/iam.py`:",
        "a call its role does not allow fails with `AccessDeniedException`, as on AWS), and `make lint` fails",
        "when this document drifts from the template.",
        "",
        "Rules the template follows: every function gets exactly the actions its code calls, each on the",
        "resources it touches (the table and only the indexes it queries, key prefixes in the bucket, the one",
        "queue, bus, state machine and parameter); of the secrets only those it uses - the OMS secret (API key",
        "hashes, tracking-link secret), a provider's API secret (its API credentials) or its push secret (what",
        "verifies its pushes: the webhook reads nothing else); the PII key only for `kms:GenerateDataKey` (the",
        "API) or `kms:Decrypt` (the waybill tasks, the recovery sweep), conditioned on the encryption context,",
        "and through S3 for the data bucket's SSE-KMS. The key policy grants use to those roles alone (by name",
        "pattern, with the same conditions); the account statement administers the key but cannot use it.",
        "`*` appears only where AWS offers no narrower resource - CloudWatch Logs and X-Ray (the managed",
        "policies SAM attaches for the runtime and `Tracing: Active`), Step Functions' log delivery - and in",
        "`AWSLambdaSQSQueueExecutionRole`, which SAM attaches to every function with an SQS event source (its",
        "queue actions are what the Lambda service needs to poll; SAM offers no way to scope them).",
        "",
        "## Functions",
        "",
    ]
    for logical, resource in resources.items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        role = resource["Properties"]["Role"]["Fn::GetAtt"][0]
        used.add(role)
        out += _role_section(f"{logical} (role `{role}`)", roles[role])
    out += ["## Step Functions", ""]
    for logical, resource in resources.items():
        if resource["Type"] == "AWS::StepFunctions::StateMachine":
            role = resource["Properties"]["RoleArn"]["Fn::GetAtt"][0]
            used.add(role)
            out += _role_section(f"{logical} (role `{role}`)", roles[role])
    out += ["## Schedules", ""]
    for logical, resource in resources.items():
        if resource["Type"] == "AWS::Scheduler::Schedule":
            role = resource["Properties"]["Target"]["RoleArn"]["Fn::GetAtt"][0]
            used.add(role)
            out += _role_section(f"{logical} (role `{role}`)", roles[role])
    out += ["## Other roles", ""]
    for logical, role in roles.items():
        if logical not in used:
            out += _role_section(f"`{logical}`", role)
    out += ["## Resource policies (what AWS services may do to our resources)", ""]
    for logical, resource in resources.items():
        if resource["Type"] in ("AWS::SNS::TopicPolicy", "AWS::SQS::QueuePolicy", "AWS::S3::BucketPolicy"):
            document = resource["Properties"]["PolicyDocument"]
            out += [f"### {logical}", "", "| actions | resources | condition |", "|---|---|---|"]
            out += [*_statement_rows(_listed(document.get("Statement", []))), ""]
        if resource["Type"] == "AWS::KMS::Key":
            document = resource["Properties"]["KeyPolicy"]
            out += [f"### {logical} (key policy)", "", "| actions | resources | condition |", "|---|---|---|"]
            out += [*_statement_rows(_listed(document.get("Statement", []))), ""]
    permissions = sorted(
        (symbolic(r["Properties"]["FunctionName"]), str(r["Properties"]["Principal"]), _how(r["Properties"]))
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Permission"
    )
    out += ["### Lambda permissions", ""]
    out += [f"- `{function}` may be invoked by `{who}`{how}" for function, who, how in sorted(set(permissions))]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).rstrip() + "\n"


MARKER = "<!-- Everything below is generated by `python -m tools.security_doc --write docs/security.md`. -->"


def document(existing: str, generated: str) -> str:
    """The hand-written part of ``existing`` (up to and including :data:`MARKER`), then ``generated``."""
    head, found, _ = existing.partition(MARKER)
    if not found:
        raise SystemExit(f"the document has no marker line {MARKER!r}: add it under the threat model")
    return head + MARKER + "\n\n" + generated


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", type=Path)
    group.add_argument("--check", type=Path)
    args = parser.parse_args(argv)
    path: Path = args.write or args.check
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    text = document(current, render())
    if args.write:
        args.write.write_text(text, encoding="utf-8")
        return 0
    if current != text:
        print(f"{args.check} is out of date: run `python -m tools.security_doc --write {args.check}`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
