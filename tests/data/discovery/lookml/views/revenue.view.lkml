view: revenue {
  sql_table_name: ANALYTICS.MARTS.FCT_REVENUE ;;

  dimension: plan_code {
    type: string
    sql: ${TABLE}.PLAN_CODE ;;
  }
  dimension: customer_id {
    hidden: yes
    sql: ${TABLE}."CUSTOMER_ID" ;;
  }
  dimension: region {}
  dimension_group: booked {
    type: time
    timeframes: [date, month]
    sql: ${TABLE}.booked_at ;;
  }
  measure: total_revenue {
    type: sum
    sql: ${TABLE}.revenue ;;
  }
  measure: count { type: count }
}
