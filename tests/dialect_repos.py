"""Small dbt repositories with no ``.tessera.yml``, each written in its warehouse's own SQL.

Every model here parses in its dialect and not under postgres (the old default), so a test that
finds its columns proves the dialect was detected. Shared by the engine, ``tessera check`` and
``tessera init`` tests.
"""

from __future__ import annotations

BIGQUERY_MODEL = """\
select
  o.order_id,
  regexp_extract(o.note, r"^(\\d+)") as note_code,
  struct(o.order_id as id, o.amount as amount) as detail,
  o.amount,
  o.plan_code,
from `shop-prod.raw.orders` as o
"""

SNOWFLAKE_MODEL = """\
select
  raw:customer.id::int as customer_id,
  raw:amount::number(10, 2) as amount,
  raw:plan::string as plan_code,
  $1 as first_value
from {{ source('raw', 'events') }}
"""

DATABRICKS_MODEL = """\
select
  `order id` as order_id,
  plan_code,
  cast(items as array<string>) as items
from {{ source('raw', 'events') }}
"""

RAW_SOURCES = """\
version: 2
sources:
  - name: raw
    tables:
      - name: events
"""

EXPOSURE = """\
version: 2
exposures:
  - name: revenue_dashboard
    type: dashboard
    owner:
      name: Growth
      email: growth@shop.test
    depends_on: [ref('MODEL')]
groups:
  - name: finance
    owner:
      name: Finance Data
      email: finance@shop.test
models:
  - name: MODEL
    group: finance
    meta:
      owner: "@acme/platform"
"""


def _project(folder: str, name: str, model: str, sql: str) -> dict[str, str]:
    prefix = f"{folder}/" if folder else ""
    return {
        f"{prefix}dbt_project.yml": f"name: {name}\nversion: '1.0'\nprofile: {name}\n",
        f"{prefix}models/{model}.sql": sql,
        f"{prefix}models/sources.yml": RAW_SOURCES,
        f"{prefix}models/exposures.yml": EXPOSURE.replace("MODEL", model),
    }


def bigquery_repo() -> dict[str, str]:
    """BigQuery, said only by ``requirements.txt`` at the root."""
    return {
        **_project("analytics", "shop", "fct_orders", BIGQUERY_MODEL),
        "requirements.txt": "dbt-core~=1.8\ndbt-bigquery==1.8.2  # the warehouse\nsqlfluff\n",
        "README.md": "# shop\n",
    }


def snowflake_repo() -> dict[str, str]:
    """Snowflake, said only by a committed ``profiles.yml`` (with secrets behind env_var)."""
    return {
        **_project("", "shop", "fct_events", SNOWFLAKE_MODEL),
        "profiles.yml": (
            "shop:\n"
            "  target: \"{{ env_var('DBT_TARGET', 'dev') }}\"\n"
            "  outputs:\n"
            "    dev:\n"
            "      type: snowflake\n"
            "      account: \"{{ env_var('SNOWFLAKE_ACCOUNT') }}\"\n"
            "      password: {{ env_var('SNOWFLAKE_PASSWORD') }}\n"
            "      database: analytics\n"
        ),
    }


def databricks_repo() -> dict[str, str]:
    """Databricks, said only by the CI workflow that installs it."""
    return {
        **_project("lakehouse", "lake", "fct_items", DATABRICKS_MODEL),
        ".github/workflows/ci.yml": (
            "name: ci\n"
            "on: pull_request\n"
            "jobs:\n"
            "  dbt:\n"
            "    runs-on: ubuntu-latest\n"
            "    steps:\n"
            "      - uses: actions/checkout@v4\n"
            "      - run: pip install dbt-databricks==1.8.0\n"
            "      - run: dbt build --project-dir lakehouse\n"
        ),
    }


def two_dialect_repo() -> dict[str, str]:
    """Two projects in one repository: BigQuery (its own requirements) and Snowflake (profiles)."""
    return {
        **_project("marketing", "marketing", "fct_orders", BIGQUERY_MODEL),
        "marketing/requirements.txt": "dbt-bigquery>=1.7\n",
        **_project("finance", "finance", "fct_events", SNOWFLAKE_MODEL),
        "finance/profiles.yml": "finance:\n  target: prod\n  outputs:\n    prod:\n      type: snowflake\n",
    }


def drop_plan_code(files: dict[str, str]) -> dict[str, str]:
    """The same repository with ``plan_code`` removed from every model."""
    out = dict(files)
    for path, text in files.items():
        if path.endswith(".sql"):
            out[path] = "\n".join(line for line in text.splitlines() if "plan_code" not in line) + "\n"
    return out
