# a derived table over another view's table
view: big_spenders {
  derived_table: {
    sql:
      SELECT customer_id, SUM(revenue) AS lifetime_revenue
      FROM ${revenue.SQL_TABLE_NAME}
      WHERE {% condition booked_after %} booked_at {% endcondition %}
      GROUP BY 1
      HAVING SUM(revenue) > 10000 ;;
  }
  filter: booked_after { type: date }
  dimension: customer_id { primary_key: yes }
  dimension: lifetime_revenue { type: number }
}
