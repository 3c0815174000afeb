select status, count(*)::bigint as n from {{ ref('orders') }} group by status
