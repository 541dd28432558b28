-- payments: one row per charge idempotency key; status is approved, declined, refunded or voided.
CREATE TABLE IF NOT EXISTS charges (
    id INTEGER PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    amount_cents BIGINT NOT NULL,
    card_last4 TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
