-- reviews: one review per user per product, and a running rating summary per product
-- so the product page reads one row instead of aggregating.
CREATE TABLE IF NOT EXISTS reviews (
    id INTEGER PRIMARY KEY,
    product_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    rating BIGINT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (product_id, user_id)
);
CREATE INDEX IF NOT EXISTS reviews_recent ON reviews (product_id, id);
CREATE TABLE IF NOT EXISTS rating_summaries (
    product_id BIGINT PRIMARY KEY,
    review_count BIGINT NOT NULL,
    rating_sum BIGINT NOT NULL
);
