connection: "snowflake_prod"
include: "/views/*.view.lkml"

explore: revenue {
  from: revenue
  label: "Revenue"
  join: customers {
    type: left_outer
    sql_on: ${revenue.customer_id} = ${customers.customer_id} ;;
    relationship: many_to_one
  }
}

explore: big_spenders {
  from: big_spenders
}
