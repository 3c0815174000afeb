select
    subscription_id,
    customer_id,
    plan_code,
    mrr,
    trial_days,
    started_at,
    cancelled_at,
    cancelled_at is null as is_active
from {{ ref('stg_subscriptions') }}
