CREATE TABLE analytics.orders (
    id BIGINT PRIMARY KEY,
    customer_id BIGINT NOT NULL,
    amount NUMERIC(12, 2),
    plan_code VARCHAR(20)
);
