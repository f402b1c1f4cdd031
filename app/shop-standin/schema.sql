-- gearlift stand-in shop schema. Safe to apply more than once (IF NOT EXISTS / INSERT IGNORE).
-- Apply inside the target database, e.g. `mariadb shop < schema.sql`.
-- order_ref and sku are identifiers: binary collation, so matching is case-sensitive.

CREATE TABLE IF NOT EXISTS products (
  sku         VARCHAR(32)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  name        VARCHAR(200) NOT NULL,
  price_cents INT          NOT NULL,
  PRIMARY KEY (sku)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS orders (
  id         BIGINT       NOT NULL AUTO_INCREMENT,
  order_ref  VARCHAR(64)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  sku        VARCHAR(32)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  qty        INT          NOT NULL,
  created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (id),
  UNIQUE KEY uq_orders_order_ref (order_ref),
  KEY idx_orders_sku (sku)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

INSERT IGNORE INTO products (sku, name, price_cents) VALUES
  ('TSHIRT-BLK-M', 'T-shirt, black, M', 1999),
  ('TSHIRT-BLK-L', 'T-shirt, black, L', 1999),
  ('TSHIRT-WHT-M', 'T-shirt, white, M', 1799),
  ('HOODIE-GRY-M', 'Hoodie, grey, M', 4999),
  ('HOODIE-GRY-L', 'Hoodie, grey, L', 4999),
  ('HOODIE-NVY-XL', 'Hoodie, navy, XL', 5499);
