select
    id as customer_id,
    full_name,
    lower(email) as email,
    country,
    created_at
from {{ source('raw', 'customers') }}
