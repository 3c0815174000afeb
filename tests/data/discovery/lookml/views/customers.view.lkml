view: customers {
  sql_table_name: analytics.marts.dim_customers ;;
  dimension: customer_id { primary_key: yes sql: ${TABLE}.customer_id ;; }
  dimension: segment { sql: ${TABLE}.segment ;; }
}
