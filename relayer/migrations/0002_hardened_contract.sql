-- verinfer relayer schema v2: the hardened contract (draws seeded by a later block, GPU model
-- registry, fee tiers, versioned parameters, queue expiry, credited balances). Portable between
-- SQLite and PostgreSQL like v1. The derived tables are rebuilt from `events` after a reorg.

-- When each event's block was made (unix seconds; NULL where the RPC gave none and none was
-- needed): a queued task's expiry is its creation time plus the queue timeout.
ALTER TABLE events ADD COLUMN block_timestamp BIGINT;

-- Tasks: the block whose hash seeded the draw that started it, the highest node fee tier its fee
-- pays for, the parameter version it runs under (0: unknown) and when it expires if still queued
-- (0: unknown).
ALTER TABLE tasks ADD COLUMN seed_block BIGINT;
ALTER TABLE tasks ADD COLUMN fee_level BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN params_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN expires_at BIGINT NOT NULL DEFAULT 0;

-- Nodes: the fee tier (drawn only for tasks paying at least 2^tier x the minimum fee).
ALTER TABLE nodes ADD COLUMN fee_tier BIGINT NOT NULL DEFAULT 0;

-- Derived: the GPU model registry (GpuModelAdded, GpuModelActiveSet), in registration order.
CREATE TABLE gpu_models (
    id TEXT PRIMARY KEY,
    position BIGINT NOT NULL,
    name TEXT NOT NULL,
    vram_mib BIGINT NOT NULL,
    active BIGINT NOT NULL,
    added_block BIGINT NOT NULL,
    updated_block BIGINT NOT NULL
);

-- Derived: parameter versions (ParamsScheduled, ParamsActivated, ParamsScheduleCancelled).
-- `state`: scheduled, active (the last activated one), superseded or cancelled; `params` is the
-- version's values as JSON (amounts as decimal strings).
CREATE TABLE params_versions (
    version BIGINT PRIMARY KEY,
    state TEXT NOT NULL,
    params TEXT NOT NULL,
    effective_at BIGINT NOT NULL,
    scheduled_block BIGINT NOT NULL,
    activated_block BIGINT
);

-- Derived: withdrawable balances (BalanceCredited adds, Withdrawn takes all).
CREATE TABLE accounts (
    address TEXT PRIMARY KEY,
    claimable TEXT NOT NULL,
    credited TEXT NOT NULL,
    withdrawn TEXT NOT NULL,
    updated_block BIGINT NOT NULL
);

-- Derived: every credit (BalanceCredited) in chain order (`seq`), by task and by account;
-- task_id 0 = no task.
CREATE TABLE credits (
    seq BIGINT PRIMARY KEY,
    account TEXT NOT NULL,
    task_id BIGINT NOT NULL,
    reason TEXT NOT NULL,
    amount TEXT NOT NULL,
    block_number BIGINT NOT NULL
);
CREATE INDEX credits_by_task ON credits (task_id);
CREATE INDEX credits_by_account ON credits (account);
