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
-- Substring search on name_lower through a trigram index (FTS5's trigram tokenizer): a query of
-- three or more characters reads the index instead of scanning every product. External content:
-- the index holds no copy of the names; it is rebuilt when the catalog is seeded (the catalog has
-- no other writes).
CREATE VIRTUAL TABLE IF NOT EXISTS products_text USING fts5(
    name_lower, content = 'products', content_rowid = 'id', tokenize = 'trigram'
);
