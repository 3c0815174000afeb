select
    id as customer_id,
    first_name,
    last_name,
    lower(email) as email,
    cast(created_at as date) as signup_date,
    country
from {{ source('raw', 'customers') }}
