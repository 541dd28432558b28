-- orders: one row per (user, idempotency key); status is pending, confirmed, declined,
-- rejected (out of stock) or failed. Only confirmed orders are shown to users.
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY,
    user_id BIGINT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_fingerprint TEXT NOT NULL,
    status TEXT NOT NULL,
    -- payment attempt: a failed, compensated checkout retried with its key starts attempt + 1,
    -- whose reservation and charge keys are new (order-<id>-attempt-<n>)
    attempt BIGINT NOT NULL DEFAULT 1,
    total_cents BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    -- when the current attempt started (the first, or a retry's restart; not a recovery's
    -- takeover): an attempt unfinished long after it is stuck
    attempt_started_at BIGINT NOT NULL,
    -- the run that may change this order: a random token (fencing: every write checks it) and
    -- when its lease ends; past it, a retry or the recovery may take the order over
    runner TEXT NOT NULL,
    lease_until BIGINT NOT NULL,
    -- set once the order's status is final and its reservation and charge are settled to match;
    -- NULL means recovery still has work to do once the lease is over
    finished_at BIGINT,
    UNIQUE (user_id, idempotency_key)
);
CREATE INDEX IF NOT EXISTS orders_by_user ON orders (user_id, id);
CREATE INDEX IF NOT EXISTS orders_unfinished ON orders (lease_until) WHERE finished_at IS NULL;
CREATE TABLE IF NOT EXISTS order_lines (
    order_id BIGINT NOT NULL,
    product_id BIGINT NOT NULL,
    product_name TEXT NOT NULL,
    unit_price_cents BIGINT NOT NULL,
    quantity BIGINT NOT NULL,
    PRIMARY KEY (order_id, product_id)
);
