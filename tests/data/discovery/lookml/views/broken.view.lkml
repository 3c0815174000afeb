view: broken {
  sql_table_name: x ;;
  dimension: a { sql: ${TABLE}.a ;;
