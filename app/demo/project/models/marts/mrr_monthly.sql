select
    date_trunc('month', started_at) as month,
    plan_code,
    sum(mrr) as mrr,
    count(*) as active_subscriptions
from {{ ref('fct_subscriptions') }}
where is_active
group by 1, 2
