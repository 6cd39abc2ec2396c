//! The node's persisted state: one record per task it was selected for, the result payloads,
//! and the block cursor of the event scan.
//!
//! Layout under `<data_dir>/<chain id>-<verinfer address>/`:
//!
//! ```text
//! LOCK                      held (flock) while a daemon runs on this directory
//! cursor.json               next block to scan for TaskStarted
//! tasks/<id>.json           the task's record (stage, result, salt, tx hashes)
//! tasks/<id>/image-<i>.png  image payloads, in image order
//! tasks/<id>/output.json    text payload (the TextOutput)
//! ```
//!
//! A record is kept for every task the node works on, in any role: one of a full task's three
//! nodes, the one node of a sampled task (which commits, waits for the sample draw, then reveals
//! or has the task checked), or one of the two checkers of a checked sampled task. Fields added
//! since the first format are optional and left out when unset, so that full-task records keep
//! the same bytes.
//!
//! Every file is written atomically (temp file, fsync, rename, fsync of the directory), and the
//! payload and the salt are on disk before the commitment is sent: a crash at any point leaves
//! either the old or the new version of a file, never a torn one, and never a commitment whose
//! salt is lost.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Write as _},
    path::{Path, PathBuf},
};

use alloy::primitives::{Address, B256};
use serde::{Deserialize, Serialize};
use verinfer_task::TaskKind;
use verinfer_task::{ImageResult, TaskResult, TextOutput};

/// Version of the record format; a record of another version is refused, not misread.
pub const RECORD_VERSION: u32 = 1;

/// Why persisted state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A file or directory operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A state file does not parse.
    #[error("state file {path} is corrupt: {source}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// A record written by another version of the node.
    #[error(
        "state file {path} has record version {found}, this node reads version {RECORD_VERSION}"
    )]
    Version {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: u32,
    },
    /// Another daemon holds the state directory.
    #[error("state directory {0} is in use by another node daemon")]
    Locked(PathBuf),
}

/// Where a task stands, as far as this node is concerned. Stages only move forward (a sampled
/// task's first node goes `Committed`, `AwaitingSample`, then `Revealed` when the draw leaves it
/// unchecked, or `Checked` then `Revealed` when it is checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Selected; nothing computed yet.
    Assigned,
    /// Result, salt and payload persisted; the commitment may or may not have been sent.
    Computed,
    /// The commitment is on chain.
    Committed,
    /// A sampled task's first node: the commitment is on chain and the task awaits the sample
    /// draw (block `sample_block`'s hash). Next: reveal (unchecked) or `resolveSample` (checked),
    /// both before the reveal deadline.
    AwaitingSample,
    /// A sampled task's first node: the draw chose a check (`resolveSample` landed). It must not
    /// reveal before the two checkers committed (or their commit deadline passed); it waits for
    /// them, queued and then committing.
    Checked,
    /// The reveal (or invalid-args report) is on chain.
    Revealed,
    /// The task is settled on chain and its outcome recorded.
    Settled,
    /// The payload is at the relayer. Terminal.
    Uploaded,
    /// Nothing more to do: no upload is due, or a deadline was missed. Terminal.
    Closed,
}

impl Stage {
    /// Whether the daemon has nothing left to do for the task.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Uploaded | Self::Closed)
    }

    /// Lowercase name, for logs and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Assigned => "assigned",
            Self::Computed => "computed",
            Self::Committed => "committed",
            Self::AwaitingSample => "awaiting_sample",
            Self::Checked => "checked",
            Self::Revealed => "revealed",
            Self::Settled => "settled",
            Self::Uploaded => "uploaded",
            Self::Closed => "closed",
        }
    }
}

/// The part this node plays in a task.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// One of a full task's three nodes (`TaskStarted` naming three).
    #[default]
    Full,
    /// The one node a sampled task started on (`TaskStarted` naming `[node, 0, 0]`): slot 0.
    First,
    /// One of the two checkers of a checked sampled task (`CheckStarted`): slot 1 or 2.
    Checker,
}

impl Role {
    /// Lowercase name, for logs and status.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::First => "first",
            Self::Checker => "checker",
        }
    }

    const fn is_full(&self) -> bool {
        matches!(self, Self::Full)
    }
}

/// The result this node committed to, as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum StoredResult {
    /// Image pHashes, in image order.
    Image {
        /// One 64-bit pHash per image.
        phashes: Vec<u64>,
    },
    /// A text digest.
    Text {
        /// The revealed digest.
        digest: B256,
    },
    /// An invalid-args report.
    InvalidArgs {
        /// Why the args were judged invalid (for operators; not on chain).
        reason: String,
    },
}

impl StoredResult {
    /// The result in the form commitments are computed over.
    pub fn to_task_result(&self) -> TaskResult {
        match self {
            Self::Image { phashes } => TaskResult::Image(ImageResult(phashes.clone())),
            Self::Text { digest } => TaskResult::Text(*digest),
            Self::InvalidArgs { .. } => TaskResult::InvalidArgs,
        }
    }

    /// Whether this is an invalid-args report (nothing to upload).
    pub const fn is_invalid_args(&self) -> bool {
        matches!(self, Self::InvalidArgs { .. })
    }
}

/// The task's outcome as settled on chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settlement {
    /// `Validated`, `Aborted` or `Errored`.
    pub outcome: SettledOutcome,
    /// Whether this node was among the agreeing (paid) nodes.
    pub agreed: bool,
}

/// The terminal statuses a settled task can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SettledOutcome {
    /// At least two results agreed.
    Validated,
    /// No two results agreed.
    Aborted,
    /// A majority reported invalid args.
    Errored,
}

impl SettledOutcome {
    /// Lowercase name, for logs and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Validated => "validated",
            Self::Aborted => "aborted",
            Self::Errored => "errored",
        }
    }
}

/// Everything the node knows and has done about one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskRecord {
    /// [`RECORD_VERSION`].
    pub version: u32,
    /// The task id.
    pub task_id: u64,
    /// Image or text.
    pub kind: TaskKind,
    /// The task's nodes, in slot order (a sampled task's first node: `[node, 0, 0]` until its
    /// check starts, then with the checkers).
    pub nodes: [Address; 3],
    /// Block of the `TaskStarted` (a checker: `CheckStarted`) event: where to start looking for
    /// the task's later events.
    pub started_block: u64,
    /// This node's part in the task.
    #[serde(default, skip_serializing_if = "Role::is_full")]
    pub role: Role,
    /// Where the task stands.
    pub stage: Stage,
    /// The committed result (set from [`Stage::Computed`] on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<StoredResult>,
    /// The commitment salt (set from [`Stage::Computed`] on; secret until revealed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<B256>,
    /// The commitment (set from [`Stage::Computed`] on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commitment: Option<B256>,
    /// Payload files, relative to the state directory, in image order (empty for reports).
    #[serde(default)]
    pub payload_files: Vec<String>,
    /// The commit transaction, when this node sent the one that landed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_tx: Option<B256>,
    /// A sampled task's first node: the block whose hash decides whether it is checked (set from
    /// [`Stage::AwaitingSample`] on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_block: Option<u64>,
    /// A sampled task's first node: the sample draw's outcome once known (`true`: checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked: Option<bool>,
    /// The `resolveSample` transaction, when this node sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve_tx: Option<B256>,
    /// The reveal transaction, when this node sent the one that landed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reveal_tx: Option<B256>,
    /// The settle transaction, when this node settled the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle_tx: Option<B256>,
    /// The settled outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settlement: Option<Settlement>,
    /// Why the record was closed, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_reason: Option<String>,
    /// Why this node will not reveal although it committed (test behaviours only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_reveal: Option<String>,
    /// The node whose commitment was copied (the `copycat` test behaviour only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copied_from: Option<Address>,
}

impl TaskRecord {
    /// A fresh record for a full task this node was selected for.
    pub fn assigned(task_id: u64, kind: TaskKind, nodes: [Address; 3], started_block: u64) -> Self {
        Self::assigned_as(Role::Full, task_id, kind, nodes, started_block)
    }

    /// A fresh record for a task this node was selected for in `role`.
    pub fn assigned_as(
        role: Role,
        task_id: u64,
        kind: TaskKind,
        nodes: [Address; 3],
        started_block: u64,
    ) -> Self {
        Self {
            version: RECORD_VERSION,
            task_id,
            kind,
            nodes,
            started_block,
            role,
            stage: Stage::Assigned,
            result: None,
            salt: None,
            commitment: None,
            payload_files: Vec::new(),
            commit_tx: None,
            sample_block: None,
            checked: None,
            resolve_tx: None,
            reveal_tx: None,
            settle_tx: None,
            settlement: None,
            closed_reason: None,
            skip_reveal: None,
            copied_from: None,
        }
    }

    /// This node's slot (0..3) in the task, if it is one of the three.
    pub fn slot_of(&self, node: Address) -> Option<usize> {
        self.nodes.iter().position(|n| *n == node)
    }
}

/// The payload behind a result, as computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// PNG files, in image order.
    Images(Vec<Vec<u8>>),
    /// The text output.
    Text(TextOutput),
}

/// The block cursor of the `TaskStarted` scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cursor {
    next_block: u64,
}

/// The state directory of one node on one deployment.
#[derive(Debug)]
pub struct StateStore {
    dir: PathBuf,
    // Held for the store's lifetime: the OS releases the lock when the process dies.
    _lock: Option<File>,
}

impl StateStore {
    /// Opens (creating it when missing) and locks the state directory `dir`.
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        let tasks = dir.join("tasks");
        fs::create_dir_all(&tasks).map_err(io_error("create directory", &tasks))?;
        restrict_permissions(dir);
        let lock_path = dir.join("LOCK");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_error("open", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(StateError::Locked(dir.to_owned())),
            Err(fs::TryLockError::Error(source)) => {
                return Err(StateError::Io {
                    action: "lock",
                    path: lock_path,
                    source,
                });
            }
        }
        Ok(Self {
            dir: dir.to_owned(),
            _lock: Some(lock),
        })
    }

    /// Opens `dir` for reading while a daemon may hold it (e.g. `verinfer node status`); `None`
    /// when it does not exist. Never creates or locks anything: do not write through it.
    pub fn open_for_reading(dir: &Path) -> Result<Option<Self>, StateError> {
        match fs::metadata(dir.join("tasks")) {
            Ok(_) => Ok(Some(Self {
                dir: dir.to_owned(),
                _lock: None,
            })),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StateError::Io {
                action: "open",
                path: dir.to_owned(),
                source,
            }),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn record_path(&self, task_id: u64) -> PathBuf {
        self.dir.join("tasks").join(format!("{task_id}.json"))
    }

    fn payload_dir(&self, task_id: u64) -> PathBuf {
        self.dir.join("tasks").join(task_id.to_string())
    }

    /// The next block to scan, or `None` before the first scan.
    pub fn cursor(&self) -> Result<Option<u64>, StateError> {
        Ok(read_json::<Cursor>(&self.dir.join("cursor.json"))?.map(|cursor| cursor.next_block))
    }

    /// Persists the next block to scan.
    pub fn set_cursor(&self, next_block: u64) -> Result<(), StateError> {
        write_json(&self.dir.join("cursor.json"), &Cursor { next_block })
    }

    /// The record of `task_id`, if any.
    pub fn load(&self, task_id: u64) -> Result<Option<TaskRecord>, StateError> {
        let path = self.record_path(task_id);
        let record: Option<TaskRecord> = read_json(&path)?;
        if let Some(record) = &record
            && record.version != RECORD_VERSION
        {
            return Err(StateError::Version {
                path,
                found: record.version,
            });
        }
        Ok(record)
    }

    /// Persists `record` atomically.
    pub fn save(&self, record: &TaskRecord) -> Result<(), StateError> {
        write_json(&self.record_path(record.task_id), record)
    }

    /// Every record, ordered by task id.
    pub fn records(&self) -> Result<Vec<TaskRecord>, StateError> {
        let tasks = self.dir.join("tasks");
        let mut ids = Vec::new();
        for entry in fs::read_dir(&tasks).map_err(io_error("read directory", &tasks))? {
            let entry = entry.map_err(io_error("read directory", &tasks))?;
            let name = entry.file_name();
            let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|n| n.parse().ok())
            else {
                continue;
            };
            ids.push(id);
        }
        ids.sort_unstable();
        let mut records = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(record) = self.load(id)? {
                records.push(record);
            }
        }
        Ok(records)
    }

    /// Records whose stage is not terminal, ordered by task id.
    pub fn active_records(&self) -> Result<Vec<TaskRecord>, StateError> {
        Ok(self
            .records()?
            .into_iter()
            .filter(|record| !record.stage.is_terminal())
            .collect())
    }

    /// Writes the payload files of `task_id` (each atomically) and returns their paths relative
    /// to the state directory, in image order.
    pub fn write_payload(
        &self,
        task_id: u64,
        payload: &Payload,
    ) -> Result<Vec<String>, StateError> {
        let dir = self.payload_dir(task_id);
        fs::create_dir_all(&dir).map_err(io_error("create directory", &dir))?;
        let mut files = Vec::new();
        match payload {
            Payload::Images(pngs) => {
                for (index, png) in pngs.iter().enumerate() {
                    let relative = format!("tasks/{task_id}/image-{index}.png");
                    write_atomic(&self.dir.join(&relative), png)?;
                    files.push(relative);
                }
            }
            Payload::Text(output) => {
                let relative = format!("tasks/{task_id}/output.json");
                let bytes =
                    serde_json::to_vec_pretty(output).map_err(|source| StateError::Corrupt {
                        path: dir.join("output.json"),
                        source,
                    })?;
                write_atomic(&self.dir.join(&relative), &bytes)?;
                files.push(relative);
            }
        }
        Ok(files)
    }

    /// Reads back the payload of `record`.
    pub fn read_payload(&self, record: &TaskRecord) -> Result<Payload, StateError> {
        let read = |relative: &String| {
            let path = self.dir.join(relative);
            fs::read(&path).map_err(io_error("read", &path))
        };
        match record.kind {
            TaskKind::Image => Ok(Payload::Images(
                record
                    .payload_files
                    .iter()
                    .map(read)
                    .collect::<Result<_, _>>()?,
            )),
            TaskKind::Text => {
                let Some(relative) = record.payload_files.first() else {
                    let path = self.payload_dir(record.task_id).join("output.json");
                    return Err(StateError::Io {
                        action: "find",
                        path,
                        source: io::Error::new(
                            io::ErrorKind::NotFound,
                            "the record names no text payload",
                        ),
                    });
                };
                let path = self.dir.join(relative);
                let bytes = read(relative)?;
                let output = serde_json::from_slice(&bytes)
                    .map_err(|source| StateError::Corrupt { path, source })?;
                Ok(Payload::Text(output))
            }
        }
    }
}

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StateError + 'a {
    move |source| StateError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, StateError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StateError::Io {
                action: "read",
                path: path.to_owned(),
                source,
            });
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| StateError::Corrupt {
            path: path.to_owned(),
            source,
        })
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StateError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|source| StateError::Corrupt {
        path: path.to_owned(),
        source,
    })?;
    write_atomic(path, &bytes)
}

/// Writes `bytes` to `path` so that a crash leaves either the old file or the new one: a temp
/// file in the same directory, fsync, rename over `path`, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("state");
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = create_private(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        // The rename is durable only once the directory entry is.
        File::open(dir)?.sync_all()
    })();
    if let Err(source) = result {
        let _ = fs::remove_file(&tmp);
        return Err(StateError::Io {
            action: "write",
            path: path.to_owned(),
            source,
        });
    }
    Ok(())
}

/// Creates (truncating) a file readable by its owner only: records hold unrevealed salts.
fn create_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)
}

fn restrict_permissions(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Err(error) = fs::set_permissions(dir, fs::Permissions::from_mode(0o700)) {
            tracing::warn!(dir = %dir.display(), %error, "could not restrict the state directory to its owner");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use verinfer_task::FinishReason;

    fn nodes() -> [Address; 3] {
        [
            Address::repeat_byte(1),
            Address::repeat_byte(2),
            Address::repeat_byte(3),
        ]
    }

    #[test]
    fn records_round_trip_and_only_active_ones_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        assert_eq!(store.cursor().unwrap(), None);
        store.set_cursor(42).unwrap();
        assert_eq!(store.cursor().unwrap(), Some(42));

        let mut first = TaskRecord::assigned(7, TaskKind::Image, nodes(), 10);
        first.stage = Stage::Committed;
        first.result = Some(StoredResult::Image {
            phashes: vec![1, u64::MAX],
        });
        first.salt = Some(B256::repeat_byte(9));
        first.commitment = Some(B256::repeat_byte(8));
        store.save(&first).unwrap();
        let mut done = TaskRecord::assigned(3, TaskKind::Text, nodes(), 5);
        done.stage = Stage::Closed;
        store.save(&done).unwrap();

        assert_eq!(store.load(7).unwrap().as_ref(), Some(&first));
        assert_eq!(store.load(8).unwrap(), None);
        assert_eq!(
            store
                .records()
                .unwrap()
                .iter()
                .map(|r| r.task_id)
                .collect::<Vec<_>>(),
            [3, 7]
        );
        assert_eq!(store.active_records().unwrap(), [first]);
        // Nothing but the records and the cursor: no temp file left behind.
        let mut names: Vec<_> = fs::read_dir(dir.path().join("tasks"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["3.json", "7.json"]);
    }

    /// Full-task records keep the first format's bytes (the sampled fields are left out), and
    /// the sampled stages and fields round-trip.
    #[test]
    fn sampled_records_round_trip_and_full_ones_keep_their_format() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        let full = TaskRecord::assigned(1, TaskKind::Image, nodes(), 3);
        let json = serde_json::to_string(&full).unwrap();
        for absent in ["role", "sample_block", "checked", "resolve_tx"] {
            assert!(!json.contains(absent), "{absent} in {json}");
        }

        let mut first = TaskRecord::assigned_as(
            Role::First,
            2,
            TaskKind::Image,
            [Address::repeat_byte(1), Address::ZERO, Address::ZERO],
            4,
        );
        first.stage = Stage::Checked;
        first.sample_block = Some(9);
        first.checked = Some(true);
        first.resolve_tx = Some(B256::repeat_byte(7));
        store.save(&first).unwrap();
        assert_eq!(store.load(2).unwrap(), Some(first.clone()));
        let text = fs::read_to_string(dir.path().join("tasks/2.json")).unwrap();
        assert!(
            text.contains("\"role\": \"first\"") && text.contains("\"stage\": \"checked\""),
            "{text}"
        );
        let checker = TaskRecord::assigned_as(Role::Checker, 3, TaskKind::Text, nodes(), 5);
        store.save(&checker).unwrap();
        assert_eq!(store.load(3).unwrap(), Some(checker));

        // Stages keep their order: the sampled ones sit between the commitment and the reveal.
        assert!(Stage::Committed < Stage::AwaitingSample);
        assert!(Stage::AwaitingSample < Stage::Checked);
        assert!(Stage::Checked < Stage::Revealed);
        assert_eq!(Stage::AwaitingSample.as_str(), "awaiting_sample");
    }

    #[test]
    fn payloads_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        let mut record = TaskRecord::assigned(1, TaskKind::Image, nodes(), 0);
        let images = Payload::Images(vec![b"png-0".to_vec(), b"png-1".to_vec()]);
        record.payload_files = store.write_payload(1, &images).unwrap();
        assert_eq!(
            record.payload_files,
            ["tasks/1/image-0.png", "tasks/1/image-1.png"]
        );
        assert_eq!(store.read_payload(&record).unwrap(), images);

        let mut record = TaskRecord::assigned(2, TaskKind::Text, nodes(), 0);
        let text = Payload::Text(TextOutput {
            text: "hello".into(),
            token_ids: vec![1, 2, 3],
            finish_reason: FinishReason::Length,
        });
        record.payload_files = store.write_payload(2, &text).unwrap();
        assert_eq!(store.read_payload(&record).unwrap(), text);
    }

    #[test]
    fn corrupt_and_foreign_records_are_refused_and_the_directory_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        assert!(matches!(
            StateStore::open(dir.path()),
            Err(StateError::Locked(_))
        ));

        fs::write(dir.path().join("tasks/5.json"), b"{ not json").unwrap();
        assert!(matches!(store.load(5), Err(StateError::Corrupt { .. })));
        let mut record = TaskRecord::assigned(6, TaskKind::Text, nodes(), 0);
        record.version = RECORD_VERSION + 1;
        store.save(&record).unwrap();
        assert!(
            matches!(store.load(6), Err(StateError::Version { found, .. }) if found == RECORD_VERSION + 1)
        );

        drop(store);
        StateStore::open(dir.path()).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn records_are_private_to_their_owner() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        store
            .save(&TaskRecord::assigned(1, TaskKind::Text, nodes(), 0))
            .unwrap();
        let mode = fs::metadata(dir.path().join("tasks/1.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
