select
    signup_month,
    count(*) as customers,
    avg(lifetime_value) as avg_lifetime_value
from {{ ref('growth_customer_ltv') }}
group by signup_month
