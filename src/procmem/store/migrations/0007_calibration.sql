-- procmem SQLite schema, version 7: calibrations of search confidence.
--
-- One row per retriever and embedding model (key 'hybrid:<model id>', 'bm25'):
-- the logistic model procmem.calibration.Calibration fitted on cross-validation
-- folds of the stored traces, as its JSON text (Calibration.to_json).
CREATE TABLE calibrations (
    key         TEXT PRIMARY KEY,
    created_at  TEXT NOT NULL,
    json        TEXT NOT NULL
);
