"""Extract the GitHub REST operations Tessera uses into a small, checked-in ``subset.json``.

Why: the fake GitHub validates every request the bot sends (method, path template, query
parameters, JSON body) against GitHub's own REST description, but the full description is 13 MB
and lives outside the repository (``../shared``). This script keeps only the operations listed
below, inlines every ``$ref`` and turns OpenAPI 3.0's ``nullable`` into JSON Schema, so the fake
can validate with plain ``jsonschema`` on a machine without the shared fixtures.

Run from the repository root::

    .venv/bin/python tests/data/github/openapi/extract.py [path/to/api.github.com.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = HERE.parents[3] / ".." / "shared" / "fixtures" / "github" / "openapi" / "api.github.com.json"

# Every operation Tessera calls (or the fake answers); keep sorted.
OPERATIONS: tuple[str, ...] = (
    "apps/create-from-manifest",
    "apps/create-installation-access-token",
    "apps/get-installation",
    "apps/list-repos-accessible-to-installation",
    "checks/create",
    "checks/list-for-ref",
    "checks/update",
    "git/get-blob",
    "git/get-tree",
    "issues/create-comment",
    "issues/get-comment",
    "issues/list-comments",
    "issues/update-comment",
    "orgs/get-membership-for-user",
    "pulls/get",
    "pulls/list-commits",
    "pulls/list-files",
    "reactions/create-for-issue",
    "reactions/create-for-issue-comment",
    "repos/compare-commits-with-basehead",
    "repos/download-tarball-archive",
    "repos/get",
    "repos/get-collaborator-permission-level",
    "repos/get-content",
    "repos/list-commits",
    "teams/get-membership-for-user-in-org",
    "teams/list-members-in-org",
    "users/get-authenticated",
)

METHODS = ("get", "post", "put", "patch", "delete")


def resolve(node: Any, spec: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """Inline ``$ref``s and convert ``nullable`` so the result is plain JSON Schema."""
    if isinstance(node, list):
        return [resolve(item, spec, seen) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        ref = node["$ref"]
        if ref in seen:  # a cycle: accept anything below this point
            return {}
        target: Any = spec
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        return resolve(target, spec, seen + (ref,))
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in {"description", "example", "examples", "externalDocs", "x-github"}:
            continue
        if key == "properties":
            out[key] = {name: resolve(schema, spec, seen) for name, schema in value.items()}
        else:
            out[key] = resolve(value, spec, seen)
    if out.pop("nullable", False):
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
        elif "enum" in out:
            out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def extract(spec: dict[str, Any]) -> dict[str, Any]:
    """The subset document: one entry per operation, parameters and body schema resolved."""
    wanted = set(OPERATIONS)
    operations = []
    for path, item in spec["paths"].items():
        shared = item.get("parameters", [])
        for method in METHODS:
            op = item.get(method)
            if not op or op.get("operationId") not in wanted:
                continue
            params = [resolve(p, spec) for p in [*shared, *op.get("parameters", [])]]
            body = op.get("requestBody")
            request_body = None
            if body:
                body = resolve(body, spec)
                schema = body.get("content", {}).get("application/json", {}).get("schema")
                request_body = {"required": bool(body.get("required")), "schema": schema or {}}
            operations.append(
                {
                    "operationId": op["operationId"],
                    "method": method.upper(),
                    "path": path,
                    "parameters": [
                        {
                            "name": p["name"],
                            "in": p["in"],
                            "required": bool(p.get("required")),
                            "schema": p.get("schema", {}),
                        }
                        for p in params
                    ],
                    "requestBody": request_body,
                }
            )
            wanted.discard(op["operationId"])
    if wanted:
        raise SystemExit(f"operations missing from the description: {sorted(wanted)}")
    operations.sort(key=lambda o: o["operationId"])
    return {
        "source": "github/rest-api-description via @octokit/openapi (api.github.com.json)",
        "openapi_version": spec.get("info", {}).get("version"),
        "operations": operations,
    }


def main(argv: list[str]) -> int:
    source = Path(argv[1]) if len(argv) > 1 else DEFAULT_SOURCE
    spec = json.loads(source.read_text())
    subset = extract(spec)
    target = HERE / "subset.json"
    target.write_text(json.dumps(subset, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(subset['operations'])} operations to {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
