-- procmem PostgreSQL schema, version 4: text embeddings (pgvector).
--
-- One vector per (embedding model, text hash). The column is an untyped
-- `vector` because models differ in dimension; an HNSW index needs a fixed
-- dimension, so each model gets its own *partial expression* index, created by
-- put_embeddings when the model is first stored (postgres/search.py):
--   CREATE INDEX embeddings_hnsw_<md5> ON embeddings
--     USING hnsw ((vector::vector(DIM)) vector_cosine_ops) WHERE model_id = 'MODEL';
-- and nearest_embeddings orders by the same expression under the same WHERE,
-- so the planner uses it. embedding_models records each model's dimension and
-- index (dim NULL: the model's vectors differ in length, no index).
-- The extension itself is created (database-wide) before the migrations run.
CREATE TABLE embeddings (
    model_id    text NOT NULL,
    hash        text NOT NULL,
    dim         integer NOT NULL,
    vector      vector NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (model_id, hash)
);

CREATE TABLE embedding_models (
    model_id    text PRIMARY KEY,
    dim         integer,
    index_name  text
);
