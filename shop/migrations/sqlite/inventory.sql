-- inventory: available stock per product and the reservations checkouts hold on it.
-- A reservation decrements available at once; release gives it back, commit makes it final.
CREATE TABLE IF NOT EXISTS stock (
    product_id BIGINT PRIMARY KEY,
    available BIGINT NOT NULL CHECK (available >= 0)
);
CREATE TABLE IF NOT EXISTS reservations (
    reservation_key TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS reservation_lines (
    reservation_key TEXT NOT NULL,
    product_id BIGINT NOT NULL,
    quantity BIGINT NOT NULL,
    PRIMARY KEY (reservation_key, product_id)
);
