//! What to do next for a task: a pure function of the persisted record and the chain's view of
//! the task. The daemon calls it on every poll and after every restart, so resuming after a
//! crash is the ordinary path, not a special one: whatever landed on chain before the crash is
//! adopted (never sent twice), and whatever did not is sent now if its window is still open.

use alloy::primitives::Address;

use crate::state::{Role, Stage, TaskRecord};

pub use verinfer_abi::TaskStatus as ChainStatus;

/// Whether a task in `status` has been settled.
pub const fn is_settled(status: ChainStatus) -> bool {
    matches!(
        status,
        ChainStatus::Validated | ChainStatus::Aborted | ChainStatus::Errored
    )
}

/// Seconds between the turns of a task's slots to settle it ([`ChainView::settle_turn`]): a
/// few blocks, so that the next slot sees the previous slot's `settle` mined before it sends.
pub const SETTLE_STAGGER_SECS: u64 = 4;

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
    /// Number of the latest block.
    pub block: u64,
    /// A sampled task: whether the sample draw chose a check (`getTask().checked`; set by
    /// `resolveSample`, false until then).
    pub checked: bool,
    /// A sampled task: the block whose hash decides the check (0 before its first node commits).
    pub sample_block: u64,
    /// A sampled task awaiting its sample draw: the draw's outcome as the `sampleDecision` view
    /// reads it (`Some(true)`: checked), once [`sample_decidable`](Self::sample_decidable);
    /// `None` before, or when it was not read. [`ChainView::of`] leaves it `None`.
    pub sample_decision: Option<bool>,
}

impl ChainView {
    /// The planning view of `task` at the latest block `block`, of timestamp `now`.
    pub const fn of(task: &verinfer_abi::ChainTask, block: u64, now: u64) -> Self {
        Self {
            status: task.status,
            nodes: task.nodes,
            committed_mask: task.committed_mask,
            revealed_mask: task.revealed_mask,
            commit_deadline: task.commit_deadline as u64,
            reveal_deadline: task.reveal_deadline as u64,
            now,
            block,
            checked: task.checked,
            sample_block: task.sample_block,
            sample_decision: None,
        }
    }

    /// Whether a node works on the task: committing, revealing, awaiting the sample draw, or a
    /// check waiting for its checkers.
    pub const fn is_running(&self) -> bool {
        matches!(
            self.status,
            ChainStatus::Committing
                | ChainStatus::Revealing
                | ChainStatus::AwaitingSample
                | ChainStatus::CheckQueued
        )
    }

    /// Whether the task awaits its sample draw and the draw can be read: the sample block is
    /// sealed (the latest block is after it).
    pub const fn sample_decidable(&self) -> bool {
        matches!(self.status, ChainStatus::AwaitingSample) && self.block > self.sample_block
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
    /// A sampled task awaiting its draw is settleable (its first node slashed) once its reveal
    /// deadline passed.
    pub const fn settle_due(&self) -> bool {
        match self.status {
            ChainStatus::AwaitingSample => self.now >= self.reveal_deadline,
            ChainStatus::Committing | ChainStatus::Revealing => {
                self.now >= self.reveal_deadline
                    || (self.commit_over() && self.revealed_mask == self.committed_mask)
            }
            _ => false,
        }
    }

    /// Whether it is the turn of the node in `slot` to settle: [`settle_due`](Self::settle_due),
    /// and [`SETTLE_STAGGER_SECS`] times `slot` seconds have passed since it became due. Nodes
    /// that all settled the moment it became due would land several `settle` calls in one
    /// block, and all but the first revert (`NotSettleable`), each paid for: slot 0 settles
    /// first, and the others only if it has not (a node checks the chain before sending).
    pub const fn settle_turn(&self, slot: usize) -> bool {
        self.settle_due() && self.now >= self.settle_turn_at(slot)
    }

    /// When the turn of the node in `slot` to settle begins, once [`settle_due`](Self::settle_due).
    pub const fn settle_turn_at(&self, slot: usize) -> u64 {
        let due_since = match self.status {
            ChainStatus::AwaitingSample => self.reveal_deadline,
            _ if self.now >= self.reveal_deadline => self.reveal_deadline,
            // Every committed node revealed: due since the commit phase ended.
            _ => self.commit_deadline,
        };
        due_since.saturating_add(slot as u64 * SETTLE_STAGGER_SECS)
    }

    /// Whether the task's check started: its checkers are drawn.
    fn check_started(&self) -> bool {
        !self.nodes[1].is_zero() || !self.nodes[2].is_zero()
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
    /// The task settled as validated with this node agreeing, but its result and payload are
    /// not in its state (the data directory was lost after it committed): nothing to upload.
    ResultLost,
    /// A sampled task's check found no checkers before its deadline: the task expired (the fee
    /// refunded, this first node released unpaid and unslashed).
    CheckExpired,
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
            Self::ResultLost => f.write_str(
                "validated with this node agreeing, but its result is not in its state (lost with the data directory): nothing to upload",
            ),
            Self::CheckExpired => f.write_str(
                "the check found no checkers in time: the task expired, this node released unpaid",
            ),
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
    /// The chain shows a commitment of this node, but its record has no result nor salt (the
    /// state directory was lost after it committed): it cannot reveal, and will be slashed
    /// `MissedReveal` when the reveal window closes. Say so once; send nothing that must fail.
    SaltLost,
    /// A sampled task's first node committed: record the sample block, await the draw.
    AwaitSample,
    /// Awaiting the sample draw: its block is not sealed yet.
    WaitForSample,
    /// The sample draw left the task unchecked: reveal now (the reveal settles it).
    RevealUnchecked,
    /// The sample draw chose a check: send `resolveSample` to queue it.
    ResolveSample,
    /// The check is on chain (queued by this node before a restart, or by anyone): record it.
    AdoptCheck,
    /// Checked: waiting for the check's two checkers to be drawn.
    WaitForCheck,
    /// Checked: the checkers were drawn; record them.
    RecordCheckers,
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
                // Agreed and validated, but the result went with the lost state.
                Some(settlement)
                    if settlement.agreed
                        && settlement.outcome == crate::state::SettledOutcome::Validated
                        && record.result.is_none() =>
                {
                    Action::Close(CloseReason::ResultLost)
                }
                Some(_) => Action::Close(CloseReason::NothingToUpload),
                None => Action::RecordSettlement,
            },
            _ => Action::RecordSettlement,
        };
    }
    if !view.is_running() {
        if record.role == Role::First
            && record.stage >= Stage::Committed
            && view.status == ChainStatus::Expired
        {
            return Action::Close(CloseReason::CheckExpired);
        }
        return Action::Close(CloseReason::TaskNotRunning(view.status));
    }
    let Some(slot) = view.nodes.iter().position(|n| *n == node) else {
        return Action::Close(CloseReason::NotSelected);
    };
    if record.role == Role::First
        && let Some(action) = first_node_action(record, view, slot)
    {
        return action;
    }
    match record.stage {
        // A record that never computed, yet the chain holds its node's reveal or commitment: the
        // state was lost after the node committed (a computed record is on disk before its
        // commitment is sent). Adopt a reveal; never compute a new salt for a commitment that
        // is already on chain, nor call its window missed.
        Stage::Assigned if view.revealed(slot) => Action::AdoptReveal,
        Stage::Assigned if view.committed(slot) => Action::SaltLost,
        Stage::Assigned if view.commit_open() => Action::Compute,
        Stage::Assigned => Action::Close(CloseReason::CommitWindowMissed),
        Stage::Computed if view.committed(slot) => Action::AdoptCommit,
        Stage::Computed if view.commit_open() => Action::Commit,
        Stage::Computed => Action::Close(CloseReason::CommitWindowMissed),
        // A sampled task's first node reaches `AwaitingSample` and `Checked` (see
        // `first_node_action`); from its reveal phase on it acts as any node.
        Stage::Committed | Stage::AwaitingSample | Stage::Checked if view.revealed(slot) => {
            Action::AdoptReveal
        }
        Stage::Committed | Stage::AwaitingSample | Stage::Checked
            if record.skip_reveal.is_some() && view.settle_turn(slot) =>
        {
            Action::Settle
        }
        Stage::Committed | Stage::AwaitingSample | Stage::Checked
            if record.skip_reveal.is_some() =>
        {
            Action::WaitForSettlement
        }
        Stage::Committed | Stage::AwaitingSample | Stage::Checked if view.reveal_open() => {
            Action::Reveal
        }
        Stage::Committed | Stage::AwaitingSample | Stage::Checked if view.settle_turn(slot) => {
            Action::Settle
        }
        Stage::Committed | Stage::AwaitingSample | Stage::Checked if view.settle_due() => {
            Action::WaitForSettlement
        }
        Stage::Committed | Stage::AwaitingSample | Stage::Checked => Action::WaitForRevealPhase,
        Stage::Revealed | Stage::Settled if view.settle_turn(slot) => Action::Settle,
        Stage::Revealed | Stage::Settled => Action::WaitForSettlement,
        Stage::Uploaded | Stage::Closed => Action::Done,
    }
}

/// What a waiting `action` awaits and until when, for the daemon's info line (said once per
/// wait, not per poll): `None` when `action` is not a wait. The key names the wait, so that a
/// change of wait is news; times are chain times (the contract's deadlines are timestamps).
pub fn wait_description(
    action: &Action,
    node: Address,
    view: &ChainView,
) -> Option<(&'static str, String)> {
    let clock = crate::retry::utc_clock;
    let described = match action {
        Action::WaitForSample => (
            "sample",
            format!(
                "waiting for block {} to be sealed: its hash decides whether the task is checked (then this node reveals, or two checkers are drawn); reveal deadline {}",
                view.sample_block,
                clock(view.reveal_deadline)
            ),
        ),
        Action::WaitForCheck => (
            "check",
            "the task is checked: waiting for two free checkers to be drawn (the check expires after the deployment's queue timeout)".to_owned(),
        ),
        Action::WaitForRevealPhase => (
            "reveal_phase",
            format!(
                "committed: waiting for the other nodes' commitments; the reveal phase opens when all are in, at the latest after the commit deadline {}",
                clock(view.commit_deadline)
            ),
        ),
        Action::WaitForSettlement if view.settle_due() => {
            let slot = view.nodes.iter().position(|n| *n == node).unwrap_or(0);
            (
                "settle_turn",
                format!(
                    "the task is due to settle: a node in an earlier slot settles it first; this node (slot {slot}) settles at {} if nobody has",
                    clock(view.settle_turn_at(slot))
                ),
            )
        }
        Action::WaitForSettlement => (
            "settlement",
            format!(
                "waiting for the other nodes' reveals; the task settles when all are in, at the latest after the reveal deadline {}",
                clock(view.reveal_deadline)
            ),
        ),
        _ => return None,
    };
    Some(described)
}

/// The steps only a sampled task's first node takes, from its commitment until its reveal phase
/// (`None`: as any node, see [`next_action`]). It never reveals while a check it was chosen for
/// lacks the checkers' commitments: the chain shows `checked` from `resolveSample` on, and the
/// reveal waits for the reveal phase of the check.
fn first_node_action(record: &TaskRecord, view: &ChainView, slot: usize) -> Option<Action> {
    let action = match record.stage {
        Stage::Committed | Stage::AwaitingSample if view.revealed(slot) => Action::AdoptReveal,
        Stage::Committed | Stage::AwaitingSample if view.checked => Action::AdoptCheck,
        Stage::Committed => Action::AwaitSample,
        Stage::AwaitingSample | Stage::Checked if view.status == ChainStatus::AwaitingSample => {
            match view.sample_decision {
                // Too late to reveal or resolve: settling slashes this node, as for any missed
                // reveal.
                _ if view.settle_due() => Action::Settle,
                _ if record.skip_reveal.is_some() => Action::WaitForSettlement,
                None => Action::WaitForSample,
                Some(false) => Action::RevealUnchecked,
                Some(true) => Action::ResolveSample,
            }
        }
        // Resolved unchecked by someone else: the reveal phase is open, as for any node.
        Stage::AwaitingSample => return None,
        Stage::Checked if view.revealed(slot) => Action::AdoptReveal,
        Stage::Checked if view.status == ChainStatus::CheckQueued => Action::WaitForCheck,
        Stage::Checked if view.check_started() && view.nodes != record.nodes => {
            Action::RecordCheckers
        }
        _ => return None,
    };
    Some(action)
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
            block: 100,
            checked: false,
            sample_block: 0,
            sample_decision: None,
        }
    }

    /// Crash points (the stage last persisted) against what the chain shows on restart.
    #[test]
    fn waits_say_what_they_await_and_until_when() {
        use ChainStatus::{Committing, Revealing};
        assert_eq!(
            wait_description(&Action::Reveal, ME, &view(Revealing, 0, 0, 0)),
            None
        );
        let (key, line) = wait_description(
            &Action::WaitForRevealPhase,
            ME,
            &view(Committing, ME_BIT, 0, COMMIT_DEADLINE - 10),
        )
        .expect("a wait");
        assert_eq!(key, "reveal_phase");
        assert!(
            line.ends_with("after the commit deadline 00:16:40 UTC"),
            "{line}"
        );
        let (key, line) = wait_description(
            &Action::WaitForSettlement,
            ME,
            &view(Revealing, 0b111, ME_BIT, COMMIT_DEADLINE + 5),
        )
        .expect("a wait");
        assert_eq!(key, "settlement");
        assert!(
            line.ends_with("after the reveal deadline 00:17:10 UTC"),
            "{line}"
        );
        // Due, but slot 0's turn first: this node (slot 1) settles SETTLE_STAGGER_SECS later.
        let (key, line) = wait_description(
            &Action::WaitForSettlement,
            ME,
            &view(Revealing, 0b111, ME_BIT, REVEAL_DEADLINE),
        )
        .expect("a wait");
        assert_eq!(key, "settle_turn");
        assert!(
            line.ends_with("this node (slot 1) settles at 00:17:14 UTC if nobody has"),
            "{line}"
        );
    }

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
            // Settling is staggered by slot: slot 0 first, this node (slot 1) only if it has not.
            (
                "committed, reveal missed, slot 0's turn to settle",
                Stage::Committed,
                view(Revealing, 0b111, 0b101, after_reveal),
                Action::WaitForSettlement,
            ),
            (
                "committed, reveal missed",
                Stage::Committed,
                view(Revealing, 0b111, 0b101, after_reveal + SETTLE_STAGGER_SECS),
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
                "revealed, deadline passed, slot 0's turn to settle",
                Stage::Revealed,
                view(Revealing, 0b111, ME_BIT, after_reveal),
                Action::WaitForSettlement,
            ),
            (
                "revealed, deadline passed",
                Stage::Revealed,
                view(Revealing, 0b111, ME_BIT, after_reveal + SETTLE_STAGGER_SECS),
                Action::Settle,
            ),
            (
                "revealed, late committers revealed",
                Stage::Revealed,
                view(
                    Committing,
                    0b011,
                    0b011,
                    COMMIT_DEADLINE + SETTLE_STAGGER_SECS,
                ),
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

    /// A node whose state directory was lost after it committed finds a fresh `Assigned` record
    /// against its commitment on chain: it must neither compute a new salt (whose reveal would
    /// revert `CommitmentMismatch`) nor say the commit window closed before it committed.
    #[test]
    fn a_record_without_its_salt_never_recomputes_over_its_commitment_on_chain() {
        use ChainStatus::{AwaitingSample, Committing, Revealing};
        let early = COMMIT_DEADLINE - 10;
        let table: Vec<(&str, ChainView, Action)> = vec![
            (
                "committed, window open",
                view(Committing, ME_BIT, 0, early),
                Action::SaltLost,
            ),
            (
                "committed, all in",
                view(Revealing, 0b111, 0, early),
                Action::SaltLost,
            ),
            (
                "committed, commit deadline passed",
                view(Committing, 0b011, 0, COMMIT_DEADLINE + 1),
                Action::SaltLost,
            ),
            (
                "revealed before the state was lost",
                view(Revealing, 0b111, ME_BIT, early),
                Action::AdoptReveal,
            ),
            (
                "not committed, window open",
                view(Committing, 0b001, 0, early),
                Action::Compute,
            ),
            (
                "not committed, window closed",
                view(Revealing, 0b101, 0, early),
                Action::Close(CloseReason::CommitWindowMissed),
            ),
        ];
        for (name, chain, expected) in table {
            assert_eq!(
                next_action(&record(Stage::Assigned), ME, &chain),
                expected,
                "{name}"
            );
        }
        // A sampled task's first node, awaiting its sample draw.
        assert_eq!(
            next_action(
                &first_record(Stage::Assigned),
                ME,
                &sampled(AwaitingSample, SAMPLE_BLOCK, None, 900)
            ),
            Action::SaltLost
        );
        // Once said (the daemon records that it will not reveal), it waits for the slash.
        let mut lost = record(Stage::Committed);
        lost.result = None;
        lost.salt = None;
        lost.skip_reveal = Some("salt lost".into());
        assert_eq!(
            next_action(&lost, ME, &view(Revealing, 0b111, 0b101, early)),
            Action::WaitForSettlement
        );
        assert_eq!(
            next_action(
                &lost,
                ME,
                &view(
                    Revealing,
                    0b111,
                    0b101,
                    REVEAL_DEADLINE + SETTLE_STAGGER_SECS
                )
            ),
            Action::Settle
        );
        // Validated with this node agreeing (it revealed before the loss): nothing to upload.
        let mut settled = record(Stage::Settled);
        settled.result = None;
        settled.settlement = Some(Settlement {
            outcome: SettledOutcome::Validated,
            agreed: true,
        });
        assert_eq!(
            next_action(
                &settled,
                ME,
                &view(ChainStatus::Validated, 0b111, 0b111, REVEAL_DEADLINE)
            ),
            Action::Close(CloseReason::ResultLost)
        );
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

    // ------------------------------------------------------------------ sampled tasks

    const FIRST: Address = ME;
    const CHECKER_A: Address = Address::repeat_byte(0x0c);
    const CHECKER_B: Address = Address::repeat_byte(0x0d);
    const UNCHECKED_NODES: [Address; 3] = [FIRST, Address::ZERO, Address::ZERO];
    const CHECKED_NODES: [Address; 3] = [FIRST, CHECKER_A, CHECKER_B];
    const SAMPLE_BLOCK: u64 = 50;
    /// The first node's reveal deadline while awaiting the sample (set by its commitment).
    const SAMPLE_REVEAL_DEADLINE: u64 = 960;

    fn first_record(stage: Stage) -> TaskRecord {
        let mut record = record(stage);
        record.role = Role::First;
        record.nodes = UNCHECKED_NODES;
        if stage >= Stage::AwaitingSample {
            record.sample_block = Some(SAMPLE_BLOCK);
        }
        if stage == Stage::Checked {
            record.checked = Some(true);
        }
        record
    }

    /// The first node's view of its sampled task: `block` is the latest block, `decision` what
    /// `sampleDecision` read.
    fn sampled(status: ChainStatus, block: u64, decision: Option<bool>, now: u64) -> ChainView {
        ChainView {
            status,
            nodes: UNCHECKED_NODES,
            committed_mask: 0b001,
            revealed_mask: 0,
            commit_deadline: 930,
            reveal_deadline: SAMPLE_REVEAL_DEADLINE,
            now,
            block,
            checked: false,
            sample_block: SAMPLE_BLOCK,
            sample_decision: decision,
        }
    }

    /// The view once the draw chose a check: queued, or the checkers drawn (`committed` bits of
    /// the three slots), with the check's own deadlines.
    fn checking(status: ChainStatus, committed: u8, revealed: u8, now: u64) -> ChainView {
        ChainView {
            status,
            nodes: if status == ChainStatus::CheckQueued {
                UNCHECKED_NODES
            } else {
                CHECKED_NODES
            },
            committed_mask: committed,
            revealed_mask: revealed,
            commit_deadline: COMMIT_DEADLINE,
            reveal_deadline: REVEAL_DEADLINE,
            now,
            block: 200,
            checked: true,
            sample_block: SAMPLE_BLOCK,
            sample_decision: None,
        }
    }

    /// Every crash point of a sampled task's first node (the stage last persisted) against what
    /// the chain shows on restart.
    #[test]
    fn first_node_crash_points_resume_with_the_right_action() {
        use ChainStatus::{AwaitingSample, CheckQueued, Committing, Expired, Revealing, Validated};
        let early = 900;
        let sealed = SAMPLE_BLOCK + 1;
        let mut committing = sampled(Committing, 40, None, early);
        committing.committed_mask = 0;
        let with_nodes = |stage, nodes| {
            let mut record = first_record(stage);
            record.nodes = nodes;
            record
        };
        let table: Vec<(&str, TaskRecord, ChainView, Action)> = vec![
            (
                "assigned, window open",
                first_record(Stage::Assigned),
                committing,
                Action::Compute,
            ),
            (
                "computed, not on chain",
                first_record(Stage::Computed),
                committing,
                Action::Commit,
            ),
            // Crash after the commitment landed, before Committed was persisted.
            (
                "computed, commit landed",
                first_record(Stage::Computed),
                sampled(AwaitingSample, SAMPLE_BLOCK, None, early),
                Action::AdoptCommit,
            ),
            (
                "committed, awaiting the sample",
                first_record(Stage::Committed),
                sampled(AwaitingSample, SAMPLE_BLOCK, None, early),
                Action::AwaitSample,
            ),
            (
                "awaiting, sample block not sealed",
                first_record(Stage::AwaitingSample),
                sampled(AwaitingSample, SAMPLE_BLOCK, None, early),
                Action::WaitForSample,
            ),
            (
                "awaiting, unchecked",
                first_record(Stage::AwaitingSample),
                sampled(AwaitingSample, sealed, Some(false), early),
                Action::RevealUnchecked,
            ),
            (
                "awaiting, unchecked, one second before the deadline",
                first_record(Stage::AwaitingSample),
                sampled(
                    AwaitingSample,
                    sealed,
                    Some(false),
                    SAMPLE_REVEAL_DEADLINE - 1,
                ),
                Action::RevealUnchecked,
            ),
            (
                "awaiting, checked",
                first_record(Stage::AwaitingSample),
                sampled(AwaitingSample, sealed, Some(true), early),
                Action::ResolveSample,
            ),
            (
                "awaiting, deadline passed",
                first_record(Stage::AwaitingSample),
                sampled(AwaitingSample, sealed, Some(false), SAMPLE_REVEAL_DEADLINE),
                Action::Settle,
            ),
            // Someone else resolved it unchecked: the reveal phase is open.
            (
                "awaiting, resolved unchecked by another",
                first_record(Stage::AwaitingSample),
                sampled(Revealing, sealed, None, early),
                Action::Reveal,
            ),
            (
                "committed, resolved unchecked by another",
                first_record(Stage::Committed),
                sampled(Revealing, sealed, None, early),
                Action::AwaitSample,
            ),
            // Crash after the unchecked reveal landed (it settles the task at once).
            (
                "awaiting, unchecked reveal landed",
                first_record(Stage::AwaitingSample),
                {
                    let mut view = sampled(Validated, sealed, None, early);
                    view.revealed_mask = 0b001;
                    view
                },
                Action::RecordSettlement,
            ),
            // Crash after resolveSample landed, before Checked was persisted; or resolved by
            // another: adopt the check, never reveal.
            (
                "awaiting, check queued",
                first_record(Stage::AwaitingSample),
                checking(CheckQueued, 0b001, 0, early),
                Action::AdoptCheck,
            ),
            (
                "committed, check queued",
                first_record(Stage::Committed),
                checking(CheckQueued, 0b001, 0, early),
                Action::AdoptCheck,
            ),
            (
                "awaiting, checkers committing",
                first_record(Stage::AwaitingSample),
                checking(Committing, 0b011, 0, early),
                Action::AdoptCheck,
            ),
            (
                "awaiting, checkers committed",
                first_record(Stage::AwaitingSample),
                checking(Revealing, 0b111, 0, early),
                Action::AdoptCheck,
            ),
            (
                "checked, queued",
                first_record(Stage::Checked),
                checking(CheckQueued, 0b001, 0, early),
                Action::WaitForCheck,
            ),
            (
                "checked, checkers drawn",
                first_record(Stage::Checked),
                checking(Committing, 0b001, 0, early),
                Action::RecordCheckers,
            ),
            (
                "checked, checkers committing",
                with_nodes(Stage::Checked, CHECKED_NODES),
                checking(Committing, 0b101, 0, early),
                Action::WaitForRevealPhase,
            ),
            (
                "checked, checkers committed",
                with_nodes(Stage::Checked, CHECKED_NODES),
                checking(Revealing, 0b111, 0b010, early),
                Action::Reveal,
            ),
            (
                "checked, a checker missed its commit",
                with_nodes(Stage::Checked, CHECKED_NODES),
                checking(Committing, 0b011, 0, COMMIT_DEADLINE),
                Action::Reveal,
            ),
            (
                "checked, reveal landed",
                with_nodes(Stage::Checked, CHECKED_NODES),
                checking(Revealing, 0b111, 0b001, early),
                Action::AdoptReveal,
            ),
            (
                "checked, reveal missed",
                with_nodes(Stage::Checked, CHECKED_NODES),
                checking(Revealing, 0b111, 0b110, REVEAL_DEADLINE),
                Action::Settle,
            ),
            (
                "revealed after the check, others pending",
                with_nodes(Stage::Revealed, CHECKED_NODES),
                checking(Revealing, 0b111, 0b001, early),
                Action::WaitForSettlement,
            ),
            (
                "checked, expired without checkers",
                first_record(Stage::Checked),
                checking(Expired, 0b001, 0, early),
                Action::Close(CloseReason::CheckExpired),
            ),
        ];
        for (name, record, view, expected) in table {
            assert_eq!(next_action(&record, ME, &view), expected, "{name}");
        }
    }

    /// A checker is a slot of a full task started by `CheckStarted`: the first node's commitment
    /// is on chain before it computes.
    #[test]
    fn a_checker_runs_like_a_full_task_slot() {
        use ChainStatus::{Committing, Revealing};
        let checker = |stage| {
            let mut record = record(stage);
            record.role = Role::Checker;
            record.nodes = [OTHER_A, ME, CHECKER_B];
            record
        };
        let view = |status, committed, revealed, now| {
            let mut view = checking(status, committed, revealed, now);
            view.nodes = [OTHER_A, ME, CHECKER_B];
            view
        };
        let early = COMMIT_DEADLINE - 10;
        for (name, stage, chain, expected) in [
            (
                "assigned",
                Stage::Assigned,
                view(Committing, 0b001, 0, early),
                Action::Compute,
            ),
            (
                "computed",
                Stage::Computed,
                view(Committing, 0b101, 0, early),
                Action::Commit,
            ),
            (
                "commit landed",
                Stage::Computed,
                view(Revealing, 0b111, 0, early),
                Action::AdoptCommit,
            ),
            (
                "committed, the other checker pending",
                Stage::Committed,
                view(Committing, 0b011, 0, early),
                Action::WaitForRevealPhase,
            ),
            (
                "committed, all in",
                Stage::Committed,
                view(Revealing, 0b111, 0, early),
                Action::Reveal,
            ),
            (
                "revealed",
                Stage::Revealed,
                view(Revealing, 0b111, 0b010, early),
                Action::WaitForSettlement,
            ),
        ] {
            assert_eq!(next_action(&checker(stage), ME, &chain), expected, "{name}");
        }
    }

    /// Lazy (never reveals): unchecked, it lets the deadline pass and settles (slashing itself);
    /// checked, it still queues the check.
    #[test]
    fn a_lazy_first_node_never_reveals_but_still_resolves() {
        let mut lazy = first_record(Stage::AwaitingSample);
        lazy.skip_reveal = Some("lazy".into());
        let sealed = SAMPLE_BLOCK + 1;
        assert_eq!(
            next_action(
                &lazy,
                ME,
                &sampled(ChainStatus::AwaitingSample, sealed, Some(false), 900)
            ),
            Action::WaitForSettlement
        );
        assert_eq!(
            next_action(
                &lazy,
                ME,
                &sampled(
                    ChainStatus::AwaitingSample,
                    sealed,
                    Some(false),
                    SAMPLE_REVEAL_DEADLINE
                )
            ),
            Action::Settle
        );
        let mut lazy_checked = first_record(Stage::Checked);
        lazy_checked.nodes = CHECKED_NODES;
        lazy_checked.skip_reveal = Some("lazy".into());
        assert_eq!(
            next_action(
                &lazy_checked,
                ME,
                &checking(ChainStatus::Revealing, 0b111, 0b110, 900)
            ),
            Action::WaitForSettlement
        );
    }

    #[test]
    fn sample_draws_are_read_once_the_sample_block_is_sealed() {
        let view = sampled(ChainStatus::AwaitingSample, SAMPLE_BLOCK, None, 0);
        assert!(!view.sample_decidable());
        let view = sampled(ChainStatus::AwaitingSample, SAMPLE_BLOCK + 1, None, 0);
        assert!(view.sample_decidable());
        assert!(!sampled(ChainStatus::Revealing, SAMPLE_BLOCK + 1, None, 0).sample_decidable());
        assert!(view.is_running() && checking(ChainStatus::CheckQueued, 1, 0, 0).is_running());
        assert!(!checking(ChainStatus::Expired, 1, 0, 0).is_running());
    }
}
