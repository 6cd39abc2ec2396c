//! [`ChainTask`]: a task as `getTask` returns it, [`Validation`]: how its result is (or was)
//! validated, and [`Settlement`]: how it was settled (`TaskSettled`), decoded once for the
//! relayer, the node, the client and the CLI.

use std::fmt;

use alloy::primitives::{Address, B256};

use crate::{IVerinfer, TaskKind, TaskStatus, UnknownEnumValue, ValidationMode};

/// A task as `getTask` returns it, with the contract's enums and integer types decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainTask {
    /// The task id.
    pub task_id: u64,
    /// Who created (and paid for) it.
    pub creator: Address,
    /// Image or text generation.
    pub kind: TaskKind,
    /// Current status ([`TaskStatus::None`]: no such task).
    pub status: TaskStatus,
    /// Images to generate (0 for text tasks).
    pub image_count: u8,
    /// VRAM each node needs, in MiB.
    pub min_vram_mib: u32,
    /// keccak256 of the args bytes.
    pub args_hash: B256,
    /// GPU model id all three nodes share (text tasks naming a model; zero otherwise).
    pub gpu_model: B256,
    /// Escrowed fee, in token base units.
    pub fee: u128,
    /// The selected nodes in slot order (zero addresses before the task starts).
    pub nodes: [Address; 3],
    /// Bit i: node i committed.
    pub committed_mask: u8,
    /// Bit i: node i revealed.
    pub revealed_mask: u8,
    /// Bit i: node i reported invalid args.
    pub invalid_mask: u8,
    /// Commit deadline, unix seconds (0 before start).
    pub commit_deadline: u32,
    /// Reveal deadline, unix seconds (0 before start).
    pub reveal_deadline: u32,
    /// Highest node fee tier the fee pays for (a node of tier t serves fees >= 2^t x the minimum).
    pub fee_level: u8,
    /// The parameter version the task runs under (`paramsAt`).
    pub params_version: u32,
    /// When the task expires if still queued (a check waiting for checkers: when the check
    /// expires), unix seconds.
    pub expires_at: u64,
    /// Full (three nodes at once) or sampled (one node, checked by two more with probability
    /// `samplingBps`).
    pub mode: ValidationMode,
    /// Sampled tasks: the sample draw chose a check (false until it did, and for full tasks).
    pub checked: bool,
    /// Sampled tasks: the block whose hash decides the check (0 until the first node commits).
    pub sample_block: u64,
}

impl ChainTask {
    /// Decodes `getTask(task_id)`'s answer; fails on an enum value this crate does not know.
    pub fn from_info(task_id: u64, info: IVerinfer::TaskInfo) -> Result<Self, UnknownEnumValue> {
        Ok(Self {
            task_id,
            creator: info.creator,
            kind: TaskKind::try_from(info.kind)?,
            status: TaskStatus::try_from(info.status)?,
            image_count: info.imageCount,
            min_vram_mib: info.minVramMiB,
            args_hash: info.argsHash,
            gpu_model: info.gpuModel,
            fee: info.fee.to::<u128>(),
            nodes: info.nodes,
            committed_mask: info.committedMask,
            revealed_mask: info.revealedMask,
            invalid_mask: info.invalidMask,
            commit_deadline: info.commitDeadline,
            reveal_deadline: info.revealDeadline,
            fee_level: info.feeLevel,
            params_version: info.paramsVersion.to::<u32>(),
            expires_at: info.expiresAt.to::<u64>(),
            mode: ValidationMode::try_from(info.mode)?,
            checked: info.checked,
            sample_block: info.sampleBlock.to::<u64>(),
        })
    }

    /// Whether a task with this id exists.
    pub fn exists(&self) -> bool {
        self.status != TaskStatus::None
    }

    /// Whether the task reached a final status (validated, aborted, errored, cancelled or expired).
    pub fn is_terminal(&self) -> bool {
        self.status.is_final()
    }

    /// Whether its (first) node was selected: three nodes for a full task, the first node for
    /// a sampled one (its checkers join later, if it is checked).
    pub fn started(&self) -> bool {
        !self.nodes[0].is_zero()
    }

    /// Whether this is a sampled task.
    pub fn is_sampled(&self) -> bool {
        self.mode == ValidationMode::Sampled
    }

    /// How the task's result is (or was) validated; see [`Validation`].
    pub fn validation(&self) -> Validation {
        if self.mode == ValidationMode::Full {
            return Validation::Full;
        }
        if self.checked {
            return Validation::SampledChecked;
        }
        match self.status {
            // The unchecked draw runs inside the first node's reveal, which settles the task at
            // once: a settled (Validated, or Errored by its invalid-args report) sampled task that
            // is not checked was accepted unchecked. `Revealing` is only seen inside that call.
            TaskStatus::Validated | TaskStatus::Errored | TaskStatus::Revealing => {
                Validation::SampledUnchecked
            }
            // Aborted (no commitment, or no reveal nor check before the reveal deadline),
            // cancelled or expired while queued: the draw never ran.
            status if status.is_final() => Validation::SampledUndrawn,
            _ => Validation::SampledPending,
        }
    }

    /// The plain validation line of the task in its current state, with the sampling rate when
    /// known (`sampling_bps`: `taskParams(taskId).samplingBps`): [`Validation::describe`], more
    /// precise while a sampled task awaits its draw or its check, and for a check that expired.
    /// For example `sampled at p = 5%: chosen for a check: waiting for two checker nodes, then
    /// the three results are compared`.
    pub fn validation_line(&self, sampling_bps: Option<u16>) -> String {
        let validation = self.validation();
        let detail = match (validation, self.status) {
            (Validation::SampledChecked, TaskStatus::CheckQueued) => {
                "chosen for a check: waiting for two checker nodes, then the three results are \
                 compared"
                    .to_owned()
            }
            (Validation::SampledChecked, TaskStatus::Committing | TaskStatus::Revealing) => {
                "chosen for a check: two checker nodes compute it, then the three results are \
                 compared"
                    .to_owned()
            }
            (Validation::SampledChecked, TaskStatus::Expired) => {
                "chosen for a check, but no two checkers were found in time: expired, no result \
                 accepted, fee refunded"
                    .to_owned()
            }
            (Validation::SampledPending, TaskStatus::AwaitingSample) => format!(
                "its node committed; the hash of block {} decides whether two more nodes check it",
                self.sample_block
            ),
            _ => return validation.describe(sampling_bps),
        };
        format!("{}: {detail}", sampled_prefix(sampling_bps))
    }

    /// The slots that have (or will have) nodes: 3 for full and checked tasks, 1 for a sampled
    /// task until a check is drawn.
    pub fn node_slots(&self) -> usize {
        if self.is_sampled() && !self.checked {
            1
        } else {
            3
        }
    }

    /// Nodes that committed.
    pub fn committed(&self) -> u32 {
        self.committed_mask.count_ones()
    }

    /// Nodes that revealed.
    pub fn revealed(&self) -> u32 {
        self.revealed_mask.count_ones()
    }

    /// The slot (0..3) of `node` in this task, if it was selected.
    pub fn slot_of(&self, node: Address) -> Option<usize> {
        self.nodes.iter().position(|&selected| selected == node)
    }
}

/// How a task's result is validated: by three nodes, or by one node with a random check.
///
/// Derived from the task record by [`ChainTask::validation`]; its [`Display`](fmt::Display) is
/// the plain wording the client report, the CLI and the relayer show. The sampling rate `p` is
/// not in the task record (`taskParams(taskId).samplingBps` has it): [`Self::describe`] adds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Validation {
    /// A full task: three nodes compute at once, majority of three.
    Full,
    /// A sampled task whose sample has not been drawn yet (queued, its first node computing, or
    /// waiting for the block whose hash decides).
    SampledPending,
    /// A sampled task the draw chose for a check: two more nodes compute it, and the three
    /// results are compared as for a full task.
    SampledChecked,
    /// A sampled task the draw did not choose: the first node's result was accepted alone,
    /// compared with nobody's.
    SampledUnchecked,
    /// A sampled task that ended before its sample was drawn (cancelled or expired in its queue,
    /// or its first node missed a deadline): no result was accepted.
    SampledUndrawn,
}

impl Validation {
    /// Whether the result was (or will be) compared among three nodes.
    pub const fn by_three_nodes(self) -> bool {
        matches!(self, Self::Full | Self::SampledChecked)
    }

    /// The plain wording with the sampling rate, when known (`sampling_bps`:
    /// `taskParams(taskId).samplingBps`, for sampled tasks), for example
    /// `sampled at p = 5%: accepted unchecked (one node's result, not compared)`.
    pub fn describe(self, sampling_bps: Option<u16>) -> String {
        match self {
            Self::Full => self.to_string(),
            _ => format!("{}: {}", sampled_prefix(sampling_bps), self.outcome()),
        }
    }

    /// The part after "sampled: " for sampled tasks.
    fn outcome(self) -> &'static str {
        match self {
            Self::Full => "checked by three nodes (full validation)",
            Self::SampledPending => "check not drawn yet",
            Self::SampledChecked => "checked by three nodes (first node and two checkers)",
            Self::SampledUnchecked => "accepted unchecked (one node's result, not compared)",
            Self::SampledUndrawn => "ended before the check draw",
        }
    }
}

/// `Full`: `checked by three nodes (full validation)`; sampled: `sampled: <outcome>` (see
/// [`Validation::describe`] for the wording with the rate).
impl fmt::Display for Validation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full => f.write_str(self.outcome()),
            _ => write!(f, "sampled: {}", self.outcome()),
        }
    }
}

/// `sampled at p = 5%`, or `sampled` when the rate is not known.
fn sampled_prefix(sampling_bps: Option<u16>) -> String {
    sampling_bps.map_or_else(
        || "sampled".to_owned(),
        |bps| format!("sampled at p = {}", format_bps(bps)),
    )
}

/// Basis points as a percentage without trailing zeros: 500 is `5%`, 125 is `1.25%`, 1 is
/// `0.01%`.
pub fn format_bps(bps: u16) -> String {
    let whole = bps / 100;
    let fraction = bps % 100;
    if fraction == 0 {
        format!("{whole}%")
    } else {
        let fraction = format!("{fraction:02}");
        format!("{whole}.{}%", fraction.trim_end_matches('0'))
    }
}

/// The settlement of a task (`TaskSettled`).
///
/// A sampled task settled without a check compared nothing: its `distances` are empty and its
/// `agreeing_mask` is 1 (the first node, paid alone) when validated ([`Self::compared`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// Validated, Aborted or Errored.
    pub outcome: TaskStatus,
    /// Bit i: node i agreed with another node and was paid (unchecked sampled task: bit 0, the
    /// first node, whose result was accepted alone).
    pub agreeing_mask: u8,
    /// Pairwise distances, pairs (0,1), (0,2), (1,2); per image (pair-major) for image tasks,
    /// one per pair for text tasks; [`crate::NO_RESULT`] where a side has no result. Empty when
    /// nothing was compared (an unchecked sampled task).
    pub distances: Vec<u16>,
    /// The Hamming threshold image distances were judged against.
    pub threshold: u8,
    /// Fee share paid into each agreeing node's stake.
    pub reward_per_node: u128,
}

/// The pairs of slots a settlement compares, in the order of `TaskSettled.distances` (which is
/// pair-major: every image of pair 0, then of pair 1, then of pair 2).
pub const SLOT_PAIRS: [(usize, usize); 3] = [(0, 1), (0, 2), (1, 2)];

impl Settlement {
    /// Whether results were compared among three nodes (false for an unchecked sampled task,
    /// whose settlement carries no distances).
    pub fn compared(&self) -> bool {
        !self.distances.is_empty()
    }

    /// Whether node `slot` (0..3) was paid as agreeing (or, unchecked, as the accepted node).
    pub fn agreed(&self, slot: usize) -> bool {
        slot < 3 && self.agreeing_mask & (1 << slot) != 0
    }

    /// Slots of the nodes that were paid, in order.
    pub fn agreeing_slots(&self) -> Vec<usize> {
        (0..3).filter(|&slot| self.agreed(slot)).collect()
    }

    /// Distances of the pair `(a, b)` (`a < b`, slots 0..3): one per image, or one for text;
    /// empty when nothing was compared.
    pub fn pair_distances(&self, a: usize, b: usize) -> &[u16] {
        let Some(pair) = SLOT_PAIRS.iter().position(|slots| *slots == (a, b)) else {
            return &[];
        };
        let per_pair = self.distances.len() / 3;
        self.distances
            .get(pair * per_pair..(pair + 1) * per_pair)
            .unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(mode: ValidationMode, status: TaskStatus, checked: bool) -> ChainTask {
        ChainTask {
            task_id: 1,
            creator: Address::ZERO,
            kind: TaskKind::Image,
            status,
            image_count: 1,
            min_vram_mib: 0,
            args_hash: B256::ZERO,
            gpu_model: B256::ZERO,
            fee: 0,
            nodes: [Address::ZERO; 3],
            committed_mask: 0,
            revealed_mask: 0,
            invalid_mask: 0,
            commit_deadline: 0,
            reveal_deadline: 0,
            fee_level: 0,
            params_version: 1,
            expires_at: 0,
            mode,
            checked,
            sample_block: 0,
        }
    }

    #[test]
    fn validation_follows_mode_status_and_the_check_flag() {
        use TaskStatus as S;
        use Validation as V;
        use ValidationMode::{Full, Sampled};
        assert_eq!(task(Full, S::Validated, false).validation(), V::Full);
        assert_eq!(task(Full, S::Queued, false).node_slots(), 3);
        for status in [S::Queued, S::Committing, S::AwaitingSample] {
            assert_eq!(task(Sampled, status, false).validation(), V::SampledPending);
        }
        for status in [
            S::CheckQueued,
            S::Committing,
            S::Validated,
            S::Aborted,
            S::Expired,
        ] {
            assert_eq!(task(Sampled, status, true).validation(), V::SampledChecked);
        }
        for status in [S::Validated, S::Errored] {
            assert_eq!(
                task(Sampled, status, false).validation(),
                V::SampledUnchecked
            );
        }
        for status in [S::Aborted, S::Cancelled, S::Expired] {
            assert_eq!(task(Sampled, status, false).validation(), V::SampledUndrawn);
        }
        assert_eq!(task(Sampled, S::Committing, false).node_slots(), 1);
        assert_eq!(task(Sampled, S::Committing, true).node_slots(), 3);
        assert!(V::SampledChecked.by_three_nodes() && !V::SampledUnchecked.by_three_nodes());
    }

    #[test]
    fn validation_wording_names_the_rate_as_a_percentage() {
        assert_eq!(format_bps(500), "5%");
        assert_eq!(format_bps(125), "1.25%");
        assert_eq!(format_bps(1), "0.01%");
        assert_eq!(format_bps(10), "0.1%");
        assert_eq!(format_bps(10_000), "100%");
        assert_eq!(
            Validation::SampledUnchecked.describe(Some(500)),
            "sampled at p = 5%: accepted unchecked (one node's result, not compared)"
        );
        assert_eq!(
            Validation::SampledChecked.describe(Some(1000)),
            "sampled at p = 10%: checked by three nodes (first node and two checkers)"
        );
        assert_eq!(
            Validation::Full.describe(Some(500)),
            "checked by three nodes (full validation)"
        );
        assert_eq!(
            Validation::SampledPending.to_string(),
            "sampled: check not drawn yet"
        );
        assert_eq!(
            Validation::SampledUndrawn.describe(None),
            "sampled: ended before the check draw"
        );
    }

    #[test]
    fn validation_lines_follow_the_sampled_states() {
        use TaskStatus as S;
        use ValidationMode::{Full, Sampled};
        let line = |mode, status, checked| task(mode, status, checked).validation_line(Some(500));
        assert_eq!(
            line(Full, S::Committing, false),
            "checked by three nodes (full validation)"
        );
        let mut awaiting = task(Sampled, S::AwaitingSample, false);
        awaiting.sample_block = 42;
        assert_eq!(
            awaiting.validation_line(Some(500)),
            "sampled at p = 5%: its node committed; the hash of block 42 decides whether two \
             more nodes check it"
        );
        assert!(line(Sampled, S::CheckQueued, true).contains("waiting for two checker nodes"));
        assert!(line(Sampled, S::Revealing, true).contains("two checker nodes compute it"));
        assert!(line(Sampled, S::Expired, true).contains("no two checkers were found in time"));
        assert_eq!(
            line(Sampled, S::Validated, true),
            "sampled at p = 5%: checked by three nodes (first node and two checkers)"
        );
        assert_eq!(
            line(Sampled, S::Validated, false),
            "sampled at p = 5%: accepted unchecked (one node's result, not compared)"
        );
        assert_eq!(
            line(Sampled, S::Queued, false),
            "sampled at p = 5%: check not drawn yet"
        );
    }

    #[test]
    fn unchecked_settlements_compare_nothing() {
        let unchecked = Settlement {
            outcome: TaskStatus::Validated,
            agreeing_mask: 1,
            distances: vec![],
            threshold: 10,
            reward_per_node: 9,
        };
        assert!(!unchecked.compared());
        assert_eq!(unchecked.agreeing_slots(), vec![0]);
        assert!(unchecked.pair_distances(0, 1).is_empty());
        let full = Settlement {
            agreeing_mask: 0b011,
            distances: vec![0, 1, 20, 21, 20, 22],
            ..unchecked
        };
        assert!(full.compared() && full.agreed(1) && !full.agreed(2) && !full.agreed(7));
        assert_eq!(full.pair_distances(0, 2), &[20, 21]);
        assert!(full.pair_distances(2, 1).is_empty());
    }
}
