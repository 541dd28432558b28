-- catalog: categories and products. name_lower backs case-insensitive search on both backends.
CREATE TABLE IF NOT EXISTS categories (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS products (
    id INTEGER PRIMARY KEY,
    category_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    name_lower TEXT NOT NULL,
    description TEXT NOT NULL,
    price_cents BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS products_by_category ON products (category_id, id);
