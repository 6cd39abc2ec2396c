-- verinfer relayer schema v4: the explorer. Indexes for its pages (tasks by status, slashes and a
-- node's history from the raw events, a node's tasks) and what the args say that the chain does
-- not (the precision, for the calibration page). Portable between SQLite and PostgreSQL like v1.

CREATE INDEX tasks_by_status ON tasks (status);
CREATE INDEX events_by_name ON events (name, block_number, log_index);
CREATE INDEX events_by_node ON events (node, block_number, log_index);
CREATE INDEX task_nodes_by_node ON task_nodes (node, task_id);

-- Off-chain: facts read from each uploaded args blob that parses (`kind`: image or text;
-- `precision`: f32 or f16). Args uploaded before v4 have no row.
CREATE TABLE args_info (
    args_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    precision TEXT NOT NULL
);

-- Derived: how each node's tasks went (the node page's agreement rate without scanning its
-- tasks): tasks it was drawn for, of those settled, of those paid as agreeing.
CREATE TABLE node_stats (
    address TEXT PRIMARY KEY,
    selected BIGINT NOT NULL,
    settled BIGINT NOT NULL,
    agreed BIGINT NOT NULL
);
-- A database indexed before v4 starts with its counters (later events add to them).
INSERT INTO node_stats (address, selected, settled, agreed)
SELECT n.node, COUNT(*), COUNT(t.agreeing_mask),
    COALESCE(SUM(CASE WHEN t.agreeing_mask IS NULL THEN 0
        ELSE (t.agreeing_mask / (CASE n.slot WHEN 0 THEN 1 WHEN 1 THEN 2 ELSE 4 END)) % 2 END), 0)
FROM task_nodes n JOIN tasks t ON t.task_id = n.task_id
GROUP BY n.node;
