-- Queries whose output column types Tessera infers and DuckDB reports (tests/rules/test_infer_duckdb.py).
-- One query per statement; the tables are created by the test.
select id, customer_id, amount, status, created_at, is_test from orders;
select customer_id, sum(amount) as total, avg(amount) as mean, count(*) as n, count(distinct status) as statuses, min(created_at) as first_at, max(amount) as biggest from orders group by customer_id;
select round(amount, 1) as r1, round(amount) as r0, abs(amount) as a, amount * 2 as doubled, amount / 2 as halved, amount + 1 as plus, floor(amount) as fl, ceil(amount) as ce from orders;
select id * 2 as i2, id + customer_id as isum, id / 2 as idiv, id // 2 as iidiv, id % 3 as imod, -id as neg from orders;
select cast(amount as double) as d, cast(id as varchar) as s, cast(created_at as date) as day, id::bigint as big from orders;
select coalesce(status, 'none') as st, coalesce(amount, 0) as amt, nullif(status, '') as ns, case when amount > 10 then 'big' else 'small' end as size, case when is_test then 1 else 0 end as flag from orders;
select upper(status) as u, lower(status) as l, length(status) as len, substr(status, 1, 2) as sub, status || '-' || id as code, concat(status, id) as c2, trim(status) as t, replace(status, 'a', 'b') as rep from orders;
select date_trunc('month', created_at) as month, extract(year from created_at) as y, created_at::date as d, current_date as today, created_at + interval 1 day as tomorrow, date_diff('day', created_at, created_at) as dd from orders;
select id, row_number() over (partition by customer_id order by created_at) as rn, rank() over (order by amount) as rk, lag(amount) over (order by created_at) as prev, sum(amount) over (partition by customer_id) as running, count(*) over () as total_n from orders;
with c as (select id, name, plan_code from customers), o as (select customer_id, sum(amount) as revenue from orders group by 1) select c.name, c.plan_code, o.revenue from c left join o on o.customer_id = c.id;
select c.id, c.name, count(o.id) as orders_n, sum(o.amount) filter (where o.status = 'paid') as paid from customers c left join orders o on o.customer_id = c.id group by 1, 2;
select id, amount from orders union all select id, cast(score as decimal(12,2)) from customers;
select distinct status from orders;
select id, amount > 10 as is_big, status in ('a', 'b') as known, amount between 1 and 2 as small, status like 'x%' as xs, is_test and amount > 0 as both from orders;
select greatest(amount, 1) as g, least(id, 5) as l, sign(amount) as s, sqrt(amount) as sq, power(amount, 2) as p, ln(amount) as lnx from orders;
select string_agg(status, ',') as statuses, bool_or(is_test) as any_test, array_agg(id) as ids, max(status) as last_status from orders;
select id, score, score * 1.5 as boosted, round(score, 2) as rs, signup_date, signup_date + 7 as week_later, year(signup_date) as yy from customers;
select id, try_cast(name as integer) as n, md5(name) as h, left(name, 3) as pre, strpos(name, 'a') as pos from customers;
select customer_id, count(*) filter (where is_test) as tests, sum(case when status = 'paid' then amount else 0 end) as paid_amount from orders group by customer_id having count(*) > 1;
select o.id, c.plan_code, coalesce(c.score, 0.0) as score from orders o join customers c using (id);
