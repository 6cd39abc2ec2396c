-- verinfer relayer schema v3: sampled validation (createSampledTask: one node computes, and the
-- hash of the block after its commitment decides, at rate p, whether two more nodes check it).
-- Portable between SQLite and PostgreSQL like v1. Rows written before this version are tasks of
-- the full mode (three nodes from the start): the defaults say so.

-- `mode`: `full` or `sampled` (TaskCreated.mode).
ALTER TABLE tasks ADD COLUMN mode TEXT NOT NULL DEFAULT 'full';
-- The sampling rate p of the task's parameter version, basis points (sampled tasks whose
-- parameters the index knows; NULL otherwise).
ALTER TABLE tasks ADD COLUMN sampling_bps BIGINT;
-- The block whose hash decides the check (SampleCommitted; 0 until the first node committed).
ALTER TABLE tasks ADD COLUMN sample_block BIGINT NOT NULL DEFAULT 0;
-- The block of the sample draw (SampleDecided; NULL until drawn) and its outcome, as the chain's
-- `checked` (1: two checkers were or are to be drawn).
ALTER TABLE tasks ADD COLUMN sample_decided_block BIGINT;
ALTER TABLE tasks ADD COLUMN checked BIGINT NOT NULL DEFAULT 0;
-- The block whose hash seeded the draw of the two checkers (CheckStarted; the checkers are the
-- task's nodes 1 and 2, in node1 / node2 and task_nodes slots 1 and 2).
ALTER TABLE tasks ADD COLUMN check_seed_block BIGINT;
