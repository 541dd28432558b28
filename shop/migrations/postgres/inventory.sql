-- inventory: available stock per product and the reservations checkouts hold on it.
-- A reservation decrements available at once; release gives it back, commit makes it final.
-- `initial` is the stock the product started with (no restocking exists), so that
-- initial = available + held + committed can be checked at any quiet moment.
CREATE TABLE IF NOT EXISTS stock (
    product_id BIGINT PRIMARY KEY,
    available BIGINT NOT NULL CHECK (available >= 0),
    initial BIGINT NOT NULL
);
-- status: held, committed or released. A release of a key never reserved leaves a `released`
-- tombstone with no lines, so a reserve that arrives late (after its compensation) takes nothing.
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
