//! What to do next for a task: a pure function of the persisted record and the chain's view of
//! the task. The daemon calls it on every poll and after every restart, so resuming after a
//! crash is the ordinary path, not a special one: whatever landed on chain before the crash is
//! adopted (never sent twice), and whatever did not is sent now if its window is still open.

use alloy::primitives::Address;

use crate::state::{Stage, TaskRecord};

pub use verinfer_abi::TaskStatus as ChainStatus;

/// Whether a task in `status` has been settled.
pub const fn is_settled(status: ChainStatus) -> bool {
    matches!(
        status,
        ChainStatus::Validated | ChainStatus::Aborted | ChainStatus::Errored
    )
}

/// The chain's view of a task (`getTask`) and the chain's time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainView {
    /// The task's status.
    pub status: ChainStatus,
    /// The selected nodes, in slot order.
    pub nodes: [Address; 3],
    /// Bit i: node i committed.
    pub committed_mask: u8,
    /// Bit i: node i revealed (a result or an invalid-args report).
    pub revealed_mask: u8,
    /// Last second a commitment is accepted.
    pub commit_deadline: u64,
    /// Last second a reveal is accepted.
    pub reveal_deadline: u64,
    /// Timestamp of the latest block. A transaction sent now lands in a later block, so "open
    /// at the next block" is `now < deadline`.
    pub now: u64,
}

impl ChainView {
    /// The planning view of `task` at chain time `now`.
    pub const fn of(task: &verinfer_abi::ChainTask, now: u64) -> Self {
        Self {
            status: task.status,
            nodes: task.nodes,
            committed_mask: task.committed_mask,
            revealed_mask: task.revealed_mask,
            commit_deadline: task.commit_deadline as u64,
            reveal_deadline: task.reveal_deadline as u64,
            now,
        }
    }

    /// Whether a commitment sent now can still land in time.
    pub const fn commit_open(&self) -> bool {
        matches!(self.status, ChainStatus::Committing) && self.now < self.commit_deadline
    }

    /// Whether the commit phase is over (all committed, or its deadline passed).
    pub const fn commit_over(&self) -> bool {
        match self.status {
            ChainStatus::Revealing => true,
            ChainStatus::Committing => self.now >= self.commit_deadline,
            _ => false,
        }
    }

    /// Whether a reveal sent now lands in the reveal phase.
    pub const fn reveal_open(&self) -> bool {
        self.commit_over() && self.now < self.reveal_deadline
    }

    /// Whether `settle` would succeed in the next block: the reveal deadline passed, or every
    /// committed node revealed after the commit phase (e.g. nobody committed at all).
    pub const fn settle_due(&self) -> bool {
        matches!(
            self.status,
            ChainStatus::Committing | ChainStatus::Revealing
        ) && (self.now >= self.reveal_deadline
            || (self.commit_over() && self.revealed_mask == self.committed_mask))
    }

    fn committed(&self, slot: usize) -> bool {
        self.committed_mask & (1 << slot) != 0
    }

    fn revealed(&self, slot: usize) -> bool {
        self.revealed_mask & (1 << slot) != 0
    }
}

/// Why a record is closed without an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The record's node is not one of the task's three nodes on chain.
    NotSelected,
    /// The task is not running (unknown, queued or cancelled) although it was started.
    TaskNotRunning(ChainStatus),
    /// The commit window closed before this node committed.
    CommitWindowMissed,
    /// The task settled and this node has nothing to upload (not validated, did not agree, or
    /// reported invalid args).
    NothingToUpload,
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotSelected => f.write_str("this node is not among the task's nodes"),
            Self::TaskNotRunning(status) => {
                write!(f, "the task is not running (status {status:?})")
            }
            Self::CommitWindowMissed => {
                f.write_str("the commit window closed before this node committed")
            }
            Self::NothingToUpload => f.write_str("settled with nothing to upload"),
        }
    }
}

/// The next step for a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Fetch and check the args, compute, persist the result and its salt.
    Compute,
    /// Send the persisted commitment.
    Commit,
    /// The commitment is already on chain (sent before a restart): record it, send nothing.
    AdoptCommit,
    /// Committed; the reveal phase has not opened yet.
    WaitForRevealPhase,
    /// Send the reveal (or the invalid-args report).
    Reveal,
    /// The reveal is already on chain: record it, send nothing.
    AdoptReveal,
    /// Revealed (or missed the reveal); waiting for the others or the deadline.
    WaitForSettlement,
    /// Call `settle`: the deadline passed and nobody settled.
    Settle,
    /// The task is settled on chain: read and record its outcome.
    RecordSettlement,
    /// Upload the payload to the relayer.
    Upload,
    /// Nothing more will happen; close the record.
    Close(CloseReason),
    /// The record is terminal.
    Done,
}

/// The next step for `record`, held by `node`, given the chain's `view` of the task.
pub fn next_action(record: &TaskRecord, node: Address, view: &ChainView) -> Action {
    if record.stage.is_terminal() {
        return Action::Done;
    }
    if is_settled(view.status) {
        return match record.stage {
            Stage::Settled => match record.settlement {
                Some(settlement)
                    if settlement.agreed
                        && settlement.outcome == crate::state::SettledOutcome::Validated
                        && record
                            .result
                            .as_ref()
                            .is_some_and(|result| !result.is_invalid_args()) =>
                {
                    Action::Upload
                }
                Some(_) => Action::Close(CloseReason::NothingToUpload),
                None => Action::RecordSettlement,
            },
            _ => Action::RecordSettlement,
        };
    }
    if !matches!(
        view.status,
        ChainStatus::Committing | ChainStatus::Revealing
    ) {
        return Action::Close(CloseReason::TaskNotRunning(view.status));
    }
    let Some(slot) = view.nodes.iter().position(|n| *n == node) else {
        return Action::Close(CloseReason::NotSelected);
    };
    match record.stage {
        Stage::Assigned if view.commit_open() => Action::Compute,
        Stage::Assigned => Action::Close(CloseReason::CommitWindowMissed),
        Stage::Computed if view.committed(slot) => Action::AdoptCommit,
        Stage::Computed if view.commit_open() => Action::Commit,
        Stage::Computed => Action::Close(CloseReason::CommitWindowMissed),
        Stage::Committed if view.revealed(slot) => Action::AdoptReveal,
        Stage::Committed if record.skip_reveal.is_some() && view.settle_due() => Action::Settle,
        Stage::Committed if record.skip_reveal.is_some() => Action::WaitForSettlement,
        Stage::Committed if view.reveal_open() => Action::Reveal,
        Stage::Committed if view.settle_due() => Action::Settle,
        Stage::Committed => Action::WaitForRevealPhase,
        Stage::Revealed | Stage::Settled if view.settle_due() => Action::Settle,
        Stage::Revealed | Stage::Settled => Action::WaitForSettlement,
        Stage::Uploaded | Stage::Closed => Action::Done,
    }
}

#[cfg(test)]
mod tests {
    use alloy::primitives::B256;

    use super::*;
    use crate::state::{SettledOutcome, Settlement, StoredResult};
    use verinfer_task::TaskKind;

    const ME: Address = Address::repeat_byte(0xaa);
    const OTHER_A: Address = Address::repeat_byte(0x01);
    const OTHER_B: Address = Address::repeat_byte(0x02);
    // This node is slot 1.
    const NODES: [Address; 3] = [OTHER_A, ME, OTHER_B];
    const ME_BIT: u8 = 0b010;
    const COMMIT_DEADLINE: u64 = 1_000;
    const REVEAL_DEADLINE: u64 = 1_030;

    fn record(stage: Stage) -> TaskRecord {
        let mut record = TaskRecord::assigned(9, TaskKind::Image, NODES, 1);
        record.stage = stage;
        if stage >= Stage::Computed {
            record.result = Some(StoredResult::Image { phashes: vec![7] });
            record.salt = Some(B256::repeat_byte(5));
            record.commitment = Some(B256::repeat_byte(6));
        }
        record
    }

    fn view(status: ChainStatus, committed: u8, revealed: u8, now: u64) -> ChainView {
        ChainView {
            status,
            nodes: NODES,
            committed_mask: committed,
            revealed_mask: revealed,
            commit_deadline: COMMIT_DEADLINE,
            reveal_deadline: REVEAL_DEADLINE,
            now,
        }
    }

    /// Crash points (the stage last persisted) against what the chain shows on restart.
    #[test]
    fn crash_points_resume_with_the_right_action() {
        use ChainStatus::*;
        let early = COMMIT_DEADLINE - 10;
        let after_commit = COMMIT_DEADLINE + 1;
        let after_reveal = REVEAL_DEADLINE;
        let table: Vec<(&str, Stage, ChainView, Action)> = vec![
            // Crash before computing (or while computing): compute again if the window is open.
            (
                "assigned, window open",
                Stage::Assigned,
                view(Committing, 0, 0, early),
                Action::Compute,
            ),
            (
                "assigned, at the deadline",
                Stage::Assigned,
                view(Committing, 0, 0, COMMIT_DEADLINE),
                Action::Close(CloseReason::CommitWindowMissed),
            ),
            (
                "assigned, others revealing",
                Stage::Assigned,
                view(Revealing, 0b101, 0, early),
                Action::Close(CloseReason::CommitWindowMissed),
            ),
            // Crash after persisting the result, before the commitment landed: send it.
            (
                "computed, not on chain",
                Stage::Computed,
                view(Committing, 0b001, 0, early),
                Action::Commit,
            ),
            // Crash after sending the commitment, before persisting Committed: adopt it.
            (
                "computed, commit landed",
                Stage::Computed,
                view(Committing, 0b001 | ME_BIT, 0, early),
                Action::AdoptCommit,
            ),
            (
                "computed, commit landed, all in",
                Stage::Computed,
                view(Revealing, 0b111, 0, early),
                Action::AdoptCommit,
            ),
            (
                "computed, too late",
                Stage::Computed,
                view(Committing, 0b001, 0, after_commit),
                Action::Close(CloseReason::CommitWindowMissed),
            ),
            // Crash after committing: wait for the reveal phase, then reveal.
            (
                "committed, others pending",
                Stage::Committed,
                view(Committing, ME_BIT, 0, early),
                Action::WaitForRevealPhase,
            ),
            (
                "committed, all committed",
                Stage::Committed,
                view(Revealing, 0b111, 0, early),
                Action::Reveal,
            ),
            (
                "committed, commit deadline passed",
                Stage::Committed,
                view(Committing, 0b011, 0, COMMIT_DEADLINE),
                Action::Reveal,
            ),
            (
                "committed, one second before reveal deadline",
                Stage::Committed,
                view(Revealing, 0b111, 0b001, REVEAL_DEADLINE - 1),
                Action::Reveal,
            ),
            // Crash after sending the reveal, before persisting Revealed: adopt it.
            (
                "committed, reveal landed",
                Stage::Committed,
                view(Revealing, 0b111, ME_BIT, early),
                Action::AdoptReveal,
            ),
            (
                "committed, reveal missed",
                Stage::Committed,
                view(Revealing, 0b111, 0b101, after_reveal),
                Action::Settle,
            ),
            // Crash after revealing: wait, or settle once the deadline passed.
            (
                "revealed, others pending",
                Stage::Revealed,
                view(Revealing, 0b111, ME_BIT, early),
                Action::WaitForSettlement,
            ),
            (
                "revealed, deadline passed",
                Stage::Revealed,
                view(Revealing, 0b111, ME_BIT, after_reveal),
                Action::Settle,
            ),
            (
                "revealed, late committers revealed",
                Stage::Revealed,
                view(Committing, 0b011, 0b011, after_commit),
                Action::Settle,
            ),
            (
                "revealed, settled on chain",
                Stage::Revealed,
                view(Validated, 0b111, 0b111, early),
                Action::RecordSettlement,
            ),
            // A settlement the node slept through is still recorded.
            (
                "assigned, settled on chain",
                Stage::Assigned,
                view(Aborted, 0b101, 0b101, after_reveal),
                Action::RecordSettlement,
            ),
            (
                "committed, settled on chain",
                Stage::Committed,
                view(Validated, 0b111, 0b101, after_reveal),
                Action::RecordSettlement,
            ),
            // Records of tasks that are not running are closed.
            (
                "task cancelled",
                Stage::Assigned,
                view(Cancelled, 0, 0, early),
                Action::Close(CloseReason::TaskNotRunning(Cancelled)),
            ),
            (
                "terminal",
                Stage::Uploaded,
                view(Validated, 0b111, 0b111, early),
                Action::Done,
            ),
            (
                "closed",
                Stage::Closed,
                view(Committing, 0, 0, early),
                Action::Done,
            ),
        ];
        for (name, stage, view, expected) in table {
            assert_eq!(next_action(&record(stage), ME, &view), expected, "{name}");
        }
    }

    #[test]
    fn settled_records_upload_only_agreeing_validated_results() {
        let settled = |outcome, agreed, result| {
            let mut record = record(Stage::Settled);
            record.settlement = Some(Settlement { outcome, agreed });
            record.result = Some(result);
            record
        };
        let image = StoredResult::Image { phashes: vec![1] };
        let invalid = StoredResult::InvalidArgs {
            reason: "bad".into(),
        };
        let chain = view(ChainStatus::Validated, 0b111, 0b111, REVEAL_DEADLINE);
        assert_eq!(
            next_action(
                &settled(SettledOutcome::Validated, true, image.clone()),
                ME,
                &chain
            ),
            Action::Upload
        );
        for record in [
            settled(SettledOutcome::Validated, false, image.clone()),
            settled(SettledOutcome::Aborted, false, image),
            settled(SettledOutcome::Errored, true, invalid),
        ] {
            assert_eq!(
                next_action(&record, ME, &chain),
                Action::Close(CloseReason::NothingToUpload)
            );
        }
    }

    #[test]
    fn a_node_missing_from_the_task_closes_its_record() {
        let mut chain = view(ChainStatus::Committing, 0, 0, 0);
        chain.nodes = [OTHER_A, OTHER_B, Address::repeat_byte(3)];
        assert_eq!(
            next_action(&record(Stage::Assigned), ME, &chain),
            Action::Close(CloseReason::NotSelected)
        );
    }

    #[test]
    fn nobody_committed_is_settleable_right_after_the_commit_deadline() {
        let chain = view(ChainStatus::Committing, 0, 0, COMMIT_DEADLINE);
        assert!(chain.settle_due());
        assert!(!view(ChainStatus::Committing, 0, 0, COMMIT_DEADLINE - 1).settle_due());
        assert!(!view(ChainStatus::Revealing, 0b111, 0b011, REVEAL_DEADLINE - 1).settle_due());
    }
}
