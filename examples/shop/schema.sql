-- An online shop: orders embed their customer and their items, each item
-- its product, each product its tags (see docs/documents.md).
CREATE TABLE customers (
  id bigint PRIMARY KEY,
  name text NOT NULL,
  email text NOT NULL UNIQUE
);
CREATE TABLE products (
  id bigint PRIMARY KEY,
  name text NOT NULL,
  price numeric(10, 2) NOT NULL
);
CREATE TABLE tags (
  id bigint PRIMARY KEY,
  name text NOT NULL UNIQUE
);
CREATE TABLE product_tags (
  product_id bigint NOT NULL REFERENCES products ON DELETE CASCADE,
  tag_id bigint NOT NULL REFERENCES tags ON DELETE CASCADE,
  PRIMARY KEY (product_id, tag_id)
);
CREATE INDEX ON product_tags (tag_id);
CREATE TABLE orders (
  id bigint PRIMARY KEY,
  customer_id bigint NOT NULL REFERENCES customers ON DELETE CASCADE,
  status text NOT NULL,
  placed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON orders (customer_id);
CREATE TABLE order_items (
  id bigint PRIMARY KEY,
  order_id bigint NOT NULL REFERENCES orders ON DELETE CASCADE,
  product_id bigint NOT NULL REFERENCES products,
  sku text NOT NULL, -- the product's SKU when it was ordered
  position int NOT NULL,
  qty int NOT NULL
);
CREATE INDEX ON order_items (order_id);
CREATE INDEX ON order_items (product_id);
-- A deleted item, or one moved to another order, must say which order it
-- left: its order_id must be in the replica identity.
ALTER TABLE order_items REPLICA IDENTITY FULL;
