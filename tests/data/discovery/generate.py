"""Writes the query-log fixtures of tests/app/test_discovery.py (run it to regenerate them).

The layouts follow the vendors' documentation: Snowflake ``ACCOUNT_USAGE.QUERY_HISTORY`` joined to
``ACCESS_HISTORY`` on ``QUERY_ID`` (``DIRECT_OBJECTS_ACCESSED`` as documented: objectDomain,
objectName, objectId, columns[columnName, columnId]), exported as CSV with a header; BigQuery
``INFORMATION_SCHEMA.JOBS`` as newline-delimited JSON (``referenced_tables`` as an array of
project_id/dataset_id/table_id). A few hundred queries each: CTEs, joins, ``select *``, quoted
names, comments, a few that no parser reads, and a few malformed rows.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
from pathlib import Path

HERE = Path(__file__).parent
START = dt.datetime(2026, 11, 2, 6, 0, tzinfo=dt.UTC)

# (role, user, query text, objects read {TABLE: [columns]} or None for select * of the table)
SNOWFLAKE = [
    ("LOOKER_FINANCE", "LOOKER_SVC",
     "-- Looker Query Context '{\"user_id\":17}'\nSELECT fct_revenue.PLAN_CODE AS plan, SUM(fct_revenue.REVENUE) AS revenue\n"
     "FROM ANALYTICS.MARTS.FCT_REVENUE AS fct_revenue WHERE fct_revenue.BOOKED_AT >= '2026-10-01' GROUP BY 1 ORDER BY 2 DESC",
     {"ANALYTICS.MARTS.FCT_REVENUE": ["PLAN_CODE", "REVENUE", "BOOKED_AT"]}),
    ("LOOKER_FINANCE", "LOOKER_SVC",
     "WITH monthly AS (\n  SELECT DATE_TRUNC('month', \"BOOKED_AT\") AS month, \"REVENUE\"\n  FROM \"ANALYTICS\".\"MARTS\".\"FCT_REVENUE\"\n)\n"
     "SELECT month, SUM(\"REVENUE\") FROM monthly GROUP BY month",
     {"ANALYTICS.MARTS.FCT_REVENUE": ["BOOKED_AT", "REVENUE"]}),
    ("GROWTH_ANALYST", "ANA",
     "select c.segment, count(distinct r.customer_id) /* active */ from marts.fct_revenue r\n"
     "join marts.dim_customers c on c.customer_id = r.customer_id where r.region = 'EU' group by 1",
     {"ANALYTICS.MARTS.FCT_REVENUE": ["CUSTOMER_ID", "REGION"], "ANALYTICS.MARTS.DIM_CUSTOMERS": ["SEGMENT", "CUSTOMER_ID"]}),
    ("GROWTH_ANALYST", "BEN", "select * from analytics.marts.dim_customers limit 100",
     {"ANALYTICS.MARTS.DIM_CUSTOMERS": None}),
    ("DATA_ENG", "AIRFLOW",
     "insert into analytics.marts.fct_revenue (customer_id, revenue) select customer_id, sum(amount) from staging.stg_orders "
     "where status = 'paid' group by customer_id",
     {"ANALYTICS.STAGING.STG_ORDERS": ["CUSTOMER_ID", "AMOUNT", "STATUS"]}),
    ("FINANCE_ADHOC", "CARLA",
     "select o.order_id, o.amount, c.email from staging.stg_orders o left join marts.dim_customers c using (customer_id)",
     {"ANALYTICS.STAGING.STG_ORDERS": ["ORDER_ID", "AMOUNT", "CUSTOMER_ID"], "ANALYTICS.MARTS.DIM_CUSTOMERS": ["EMAIL", "CUSTOMER_ID"]}),
]
SNOWFLAKE += [
    ("LOOKER_FINANCE", "LOOKER_SVC",
     "SELECT region, revenue, ROW_NUMBER() OVER (PARTITION BY region ORDER BY revenue DESC) AS rnk\n"
     "FROM analytics.marts.fct_revenue QUALIFY rnk <= 10",
     {"ANALYTICS.MARTS.FCT_REVENUE": ["REGION", "REVENUE"]}),
    ("FINANCE_ADHOC", "CARLA",
     "select plan_code, case when revenue > 1000 then 'big' else 'small' end as size\n"
     "from marts.fct_revenue where customer_id in (select customer_id from marts.dim_customers where segment = 'ENT')",
     {"ANALYTICS.MARTS.FCT_REVENUE": ["PLAN_CODE", "REVENUE", "CUSTOMER_ID"],
      "ANALYTICS.MARTS.DIM_CUSTOMERS": ["CUSTOMER_ID", "SEGMENT"]}),
    ("GROWTH_ANALYST", "ANA",
     "select region, count(*) from analytics.marts.dim_customers group by region\n"
     "union all\nselect region, count(*) from analytics.marts.fct_revenue group by region",
     {"ANALYTICS.MARTS.DIM_CUSTOMERS": ["REGION"], "ANALYTICS.MARTS.FCT_REVENUE": ["REGION"]}),
    ("DATA_ENG", "AIRFLOW",
     "create or replace temporary table tmp_rev as select customer_id, revenue from analytics.marts.fct_revenue",
     {"ANALYTICS.MARTS.FCT_REVENUE": ["CUSTOMER_ID", "REVENUE"]}),
    ("GROWTH_ANALYST", "BEN",
     "with firsts as (\n  select customer_id, min(booked_at) as first_booked from marts.fct_revenue group by 1\n),\n"
     "cohorts as (select date_trunc('month', first_booked) as cohort, customer_id from firsts)\n"
     "select cohort, count(*) from cohorts group by 1 order by 1",
     {"ANALYTICS.MARTS.FCT_REVENUE": ["CUSTOMER_ID", "BOOKED_AT"]}),
    ("ACCOUNTADMIN", "ADMIN", "show tables in schema analytics.marts", {}),
    ("LOOKER_FINANCE", "LOOKER_SVC",
     "select count(*) from analytics.marts.fct_revenue where booked_at::date = current_date - 1",
     {"ANALYTICS.MARTS.FCT_REVENUE": ["BOOKED_AT"]}),
]
SNOWFLAKE_BROKEN = "SELECT FROM WHERE ((( broken"

BIGQUERY = [
    ("finance-bot@acme-prod.iam.gserviceaccount.com",
     "SELECT plan_code, SUM(revenue) AS revenue FROM `acme-prod.marts.fct_revenue` WHERE DATE(booked_at) > '2026-10-01' GROUP BY plan_code",
     [("acme-prod", "marts", "fct_revenue")]),
    ("ana@acme.com",
     "#standardSQL\nWITH eu AS (SELECT customer_id, region FROM `acme-prod`.marts.fct_revenue WHERE region = 'EU')\n"
     "SELECT c.segment, COUNT(*) FROM eu JOIN `acme-prod.marts.dim_customers` AS c USING (customer_id) GROUP BY 1",
     [("acme-prod", "marts", "fct_revenue"), ("acme-prod", "marts", "dim_customers")]),
    ("ana@acme.com", "SELECT * FROM `acme-prod.marts.dim_customers` LIMIT 10", [("acme-prod", "marts", "dim_customers")]),
    ("ops@acme.com", "select count(*) from marts.fct_revenue", [("acme-prod", "marts", "fct_revenue")]),
]
BIGQUERY += [
    ("finance-bot@acme-prod.iam.gserviceaccount.com",
     "SELECT region, SUM(revenue) OVER (PARTITION BY region) AS total FROM `acme-prod.marts.fct_revenue` "
     "QUALIFY ROW_NUMBER() OVER (PARTITION BY region ORDER BY booked_at DESC) = 1",
     [("acme-prod", "marts", "fct_revenue")]),
    ("ana@acme.com",
     "SELECT * EXCEPT (email) FROM `acme-prod.marts.dim_customers` WHERE segment IN UNNEST(['SMB', 'ENT'])",
     [("acme-prod", "marts", "dim_customers")]),
    ("ana@acme.com",
     "-- growth weekly\nSELECT FORMAT_DATE('%G-%V', DATE(r.booked_at)) AS week, COUNT(DISTINCT r.customer_id)\n"
     "FROM `acme-prod.marts.fct_revenue` r LEFT JOIN `acme-prod.marts.dim_customers` c ON c.customer_id = r.customer_id\n"
     "WHERE c.segment != 'TEST' GROUP BY week",
     [("acme-prod", "marts", "fct_revenue"), ("acme-prod", "marts", "dim_customers")]),
]
BIGQUERY_BROKEN = ("ops@acme.com", "SELECT revenue FROM `acme-prod.marts.fct_revenue` WHERE (((", [("acme-prod", "marts", "fct_revenue")])


def snowflake(rng: random.Random) -> None:
    with (HERE / "snowflake_query_history.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["QUERY_ID", "QUERY_TEXT", "DATABASE_NAME", "SCHEMA_NAME", "QUERY_TYPE", "USER_NAME",
                         "ROLE_NAME", "EXECUTION_STATUS", "START_TIME", "DIRECT_OBJECTS_ACCESSED"])
        for n in range(300):
            at = START + dt.timedelta(minutes=137 * n)
            stamp = at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " -0000"
            role, user, text, objects = SNOWFLAKE[rng.randrange(len(SNOWFLAKE))]
            qid = f"01b{n:05d}-0000-{rng.randrange(1 << 16):04x}"
            if n % 50 == 7:
                writer.writerow([qid, SNOWFLAKE_BROKEN, "ANALYTICS", "MARTS", "SELECT", user, role, "FAIL", stamp, ""])
                continue
            if n % 97 == 11:
                writer.writerow([qid, "", "ANALYTICS", "MARTS", "SELECT", user, role, "SUCCESS", "yesterday", ""])
                continue
            accessed = ""
            if n % 2 == 0:  # ACCESS_HISTORY present for half of the rows (it lags by up to 3 hours)
                accessed = json.dumps([
                    {"objectDomain": "Table", "objectName": name, "objectId": 100 + i,
                     "columns": [{"columnName": c, "columnId": 1000 + j} for j, c in enumerate(cols or [])]}
                    for i, (name, cols) in enumerate(objects.items())
                ]) if objects else ""
            query_type = "INSERT" if text.lower().startswith("insert") else "SELECT"
            writer.writerow([qid, text, "ANALYTICS", "MARTS", query_type, user, role, "SUCCESS", stamp, accessed])


def bigquery(rng: random.Random) -> None:
    with (HERE / "bigquery_jobs.jsonl").open("w") as handle:
        for n in range(300):
            at = START + dt.timedelta(minutes=131 * n)
            user, text, tables = BIGQUERY_BROKEN if n % 60 == 13 else BIGQUERY[rng.randrange(len(BIGQUERY))]
            row = {
                "creation_time": at.strftime("%Y-%m-%d %H:%M:%S.%f UTC"),
                "project_id": "acme-prod",
                "project_number": 4410021,
                "user_email": user,
                "job_id": f"bquxjob_{n:06x}",
                "job_type": "QUERY" if n % 75 != 3 else "LOAD",
                "statement_type": "SELECT",
                "state": "DONE",
                "query": text,
                "referenced_tables": [{"project_id": p, "dataset_id": d, "table_id": t} for p, d, t in tables],
                "total_bytes_processed": rng.randrange(1 << 30),
            }
            handle.write(json.dumps(row) + "\n")
            if n % 100 == 42:
                handle.write('{"creation_time": "2026-11-05 10:00:00 UTC", "query": \n')  # a truncated line


if __name__ == "__main__":
    snowflake(random.Random(7))
    bigquery(random.Random(11))
