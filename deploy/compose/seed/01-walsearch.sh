#!/bin/sh
# Runs once, when the postgres container starts on an empty volume: a small
# shop schema with rows, and the role walsearch connects as.
#
# The walsearch role is not a superuser. It has what `walsearch run` checks
# for: LOGIN and REPLICATION, SELECT on the tables it captures, ownership of
# them (here through membership of the role "shop" that owns them, which a
# publication of listed tables needs), CREATE on the database (to create the
# publication) and CREATE on schema public (for its helper tables).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v db="$POSTGRES_DB" -v pw="$WALSEARCH_PG_PASSWORD" <<'SQL'
CREATE ROLE shop NOLOGIN;
CREATE ROLE walsearch LOGIN REPLICATION PASSWORD :'pw' IN ROLE shop;
GRANT CREATE ON DATABASE :"db" TO walsearch;
GRANT CREATE ON SCHEMA public TO shop, walsearch;

SET ROLE shop;
CREATE TABLE categories (
  id   int PRIMARY KEY,
  name text NOT NULL
);
CREATE TABLE products (
  id          bigint PRIMARY KEY,
  sku         text NOT NULL UNIQUE,
  name        text NOT NULL,
  description text,
  category_id int REFERENCES categories(id),
  price       numeric(10,2) NOT NULL,
  in_stock    boolean NOT NULL DEFAULT true,
  tags        text[],
  attributes  jsonb,
  updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO categories VALUES (1, 'Books'), (2, 'Music'), (3, 'Garden'), (4, 'Kitchen');
INSERT INTO products (id, sku, name, description, category_id, price, tags, attributes)
SELECT i,
       'SKU-' || lpad(i::text, 5, '0'),
       (ARRAY['Blue', 'Red', 'Small', 'Large', 'Classic'])[1 + i % 5] || ' ' ||
       (ARRAY['teapot', 'notebook', 'vinyl record', 'trowel', 'lamp'])[1 + (i / 5) % 5] || ' ' || i,
       'A fine item, number ' || i || ', made to last.',
       1 + i % 4,
       round((5 + (i * 37) % 200)::numeric + 0.99, 2),
       ARRAY[(ARRAY['new', 'sale', 'gift'])[1 + i % 3]],
       jsonb_build_object('weight_g', 100 + i % 900, 'colour', (ARRAY['blue', 'red', 'green'])[1 + i % 3])
FROM generate_series(1, 200) AS i;
RESET ROLE;
SQL
