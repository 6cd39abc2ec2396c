-- verinfer relayer schema v1. Portable between SQLite and PostgreSQL: integers are BIGINT,
-- hashes and addresses are lowercase 0x-hex TEXT, token amounts are decimal TEXT (uint96).

-- Chain index: the next block to index, for the one contract this database follows.
CREATE TABLE index_cursor (
    id BIGINT PRIMARY KEY,
    chain_id BIGINT NOT NULL,
    contract TEXT NOT NULL,
    next_block BIGINT NOT NULL
);

-- Hashes of indexed blocks (each range end and every block with an event), to detect reorgs.
CREATE TABLE indexed_blocks (
    number BIGINT PRIMARY KEY,
    hash TEXT NOT NULL
);

-- Every Verinfer log, raw; derived state below is rebuilt from these alone.
CREATE TABLE events (
    block_number BIGINT NOT NULL,
    block_hash TEXT NOT NULL,
    log_index BIGINT NOT NULL,
    tx_hash TEXT NOT NULL,
    name TEXT NOT NULL,
    task_id BIGINT,
    node TEXT,
    topics TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (block_hash, log_index)
);
CREATE INDEX events_by_position ON events (block_number, log_index);
CREATE INDEX events_by_task ON events (task_id);

-- Derived: tasks.
CREATE TABLE tasks (
    task_id BIGINT PRIMARY KEY,
    creator TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    image_count BIGINT NOT NULL,
    min_vram_mib BIGINT NOT NULL,
    args_hash TEXT NOT NULL,
    gpu_model TEXT NOT NULL,
    fee TEXT NOT NULL,
    queue_key TEXT,
    node0 TEXT,
    node1 TEXT,
    node2 TEXT,
    committed_mask BIGINT NOT NULL,
    revealed_mask BIGINT NOT NULL,
    invalid_mask BIGINT NOT NULL,
    commit_deadline BIGINT NOT NULL,
    reveal_deadline BIGINT NOT NULL,
    agreeing_mask BIGINT,
    distances TEXT,
    threshold BIGINT,
    reward_per_node TEXT,
    created_block BIGINT NOT NULL,
    updated_block BIGINT NOT NULL
);
CREATE INDEX tasks_by_args ON tasks (args_hash);

-- Derived: each selected node's commitment and revealed result.
CREATE TABLE task_nodes (
    task_id BIGINT NOT NULL,
    slot BIGINT NOT NULL,
    node TEXT NOT NULL,
    commitment TEXT,
    phashes TEXT,
    text_digest TEXT,
    invalid_args BIGINT NOT NULL,
    PRIMARY KEY (task_id, slot)
);

-- Derived: nodes.
CREATE TABLE nodes (
    address TEXT PRIMARY KEY,
    node_id BIGINT NOT NULL,
    state TEXT NOT NULL,
    stake TEXT NOT NULL,
    gpu_model TEXT NOT NULL,
    gpu_model_name TEXT NOT NULL,
    vram_mib BIGINT NOT NULL,
    task_id BIGINT NOT NULL,
    updated_block BIGINT NOT NULL
);

-- Off-chain data: content-addressed blobs (keccak256 of the bytes).
CREATE TABLE blobs (
    keccak TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Accepted result uploads: one per (task, node), verified against the node's reveal.
CREATE TABLE results (
    task_id BIGINT NOT NULL,
    node TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload_hash TEXT NOT NULL,
    signature TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (task_id, node)
);

-- The blobs of an accepted upload, in order (PNG i, or the text output at position 0).
CREATE TABLE result_items (
    task_id BIGINT NOT NULL,
    node TEXT NOT NULL,
    position BIGINT NOT NULL,
    blob TEXT NOT NULL,
    phash TEXT,
    PRIMARY KEY (task_id, node, position)
);
