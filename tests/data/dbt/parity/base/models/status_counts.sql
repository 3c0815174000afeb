select status, count(*) as n from {{ ref('orders') }} group by status
