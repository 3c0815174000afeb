select distinct plan_code::varchar as plan_code, 1::integer as plan_rank
from {{ ref('orders') }}
