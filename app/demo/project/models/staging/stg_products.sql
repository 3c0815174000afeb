select
    id as product_id,
    name as product_name,
    category,
    list_price
from {{ source('raw', 'products') }}
