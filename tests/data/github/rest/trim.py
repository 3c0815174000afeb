"""Write trimmed response examples for the fake GitHub from GitHub's REST description.

Why: the fake's answers are modelled on GitHub's own examples, so their shape (field names,
nesting, types) matches what Tessera will meet in production. Only the fields a client may read
are kept (``*_url`` hyperlinks other than ``url``/``html_url`` are dropped) to keep the checked-in
copies small (in ``app/demo/data/github/rest``); the fake fills in ids, SHAs and bodies from its state.

Run from the repository root::

    .venv/bin/python tests/data/github/rest/trim.py [path/to/api.github.com.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TARGET = HERE.parents[3] / "app" / "demo" / "data" / "github" / "rest"  # the fake ships in the package
DEFAULT_SOURCE = HERE.parents[3] / ".." / "shared" / "fixtures" / "github" / "openapi" / "api.github.com.json"

# operationId -> status whose first example is kept
RESPONSES: dict[str, str] = {
    "apps/create-from-manifest": "201",
    "apps/create-installation-access-token": "201",
    "apps/get-installation": "200",
    "checks/create": "201",
    "git/get-blob": "200",
    "git/get-tree": "200",
    "issues/create-comment": "201",
    "pulls/get": "200",
    "pulls/list-files": "200",
    "reactions/create-for-issue-comment": "201",
    "repos/compare-commits-with-basehead": "200",
    "repos/get": "200",
    "repos/get-collaborator-permission-level": "200",
    "repos/get-content": "200",
    "teams/get-membership-for-user-in-org": "200",
}
KEEP_URLS = {
    "url",
    "html_url",
    "download_url",
    "git_url",
    "blob_url",
    "raw_url",
    "contents_url",
    "details_url",
    "avatar_url",
}


def trim(node: Any, depth: int = 0) -> Any:
    """Drop hyperlink templates and keep nested users/repos shallow."""
    if isinstance(node, list):
        return [trim(item, depth + 1) for item in node[:2]]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key.endswith("_url") and key not in KEEP_URLS:
            continue
        if key in {
            "license",
            "template_repository",
            "organization",
            "source",
            "parent",
            "security_and_analysis",
            "_links",
            "code_of_conduct",
            "custom_properties",
            "body_html",
            "body_text",
            "reactions",
            "performed_via_github_app",
        }:
            continue
        out[key] = trim(value, depth + 1)
    return out


def examples_of(spec: dict[str, Any]) -> dict[str, Any]:
    """``{"pulls.get": trimmed example, ...}`` for every operation in :data:`RESPONSES`."""
    examples = spec["components"]["examples"]
    found: dict[str, Any] = {}
    for item in spec["paths"].values():
        for op in item.values():
            if not isinstance(op, dict) or op.get("operationId") not in RESPONSES:
                continue
            response = op["responses"][RESPONSES[op["operationId"]]]
            if "$ref" in response:
                response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
            content = next(iter(response["content"].values()))
            example = next(iter(content["examples"].values()))
            if "$ref" in example:
                example = examples[example["$ref"].rsplit("/", 1)[1]]
            found[op["operationId"].replace("/", ".")] = trim(example["value"])
    missing = {name.replace("/", ".") for name in RESPONSES} - set(found)
    if missing:
        raise SystemExit(f"examples missing from the description: {sorted(missing)}")
    return found


def main(argv: list[str]) -> int:
    source = Path(argv[1]) if len(argv) > 1 else DEFAULT_SOURCE
    found = examples_of(json.loads(source.read_text()))
    for name, value in sorted(found.items()):
        (TARGET / f"{name}.json").write_text(json.dumps(value, indent=1) + "\n")
    print(f"wrote {len(found)} examples")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
