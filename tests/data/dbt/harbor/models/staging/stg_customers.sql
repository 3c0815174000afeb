select
    id as customer_id,
    lower(email) as email,
    plan_code
from {{ source("shop", "customers") }}
