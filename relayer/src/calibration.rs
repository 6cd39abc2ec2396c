//! Calibration of the pHash threshold: how far apart the results of honest nodes lie, by the pair
//! of GPU models (and the precision) that produced them, against the threshold in force.
//!
//! The data are the pairwise distances the contract computed when it settled the most recent
//! [`MAX_TASKS`] validated image tasks (`TaskSettled.distances`: for each pair of nodes and each
//! image, the Hamming distance between their pHashes). A pair of results is grouped by the GPU
//! model names of its two nodes (sorted) and by the precision the args ask for (read from the
//! uploaded args; unknown for args the relayer never read).
//!
//! # The suggested threshold ([`suggest_threshold`])
//!
//! pHashes of unrelated images lie about 32 ± 4 bits apart, so a distance of at most
//! [`SAME_IMAGE_MAX`] (20) bits is taken as two renderings of the same image: the spread honest
//! nodes produce on different hardware. The suggestion is the smallest threshold that accepts at
//! least 99.9 % ([`ACCEPT_PER_MILLE`]) of the same-image pairs of every group that has at least
//! [`MIN_GROUP_PAIRS`] (30) of them: the largest of those groups' own 99.9 % thresholds. So it is
//! never above 20 bits (the contract's `MAX_THRESHOLD` is 64). Too little data (no group with 30
//! same-image pairs): no suggestion, and the reason says so.
//!
//! A higher threshold accepts looser (cheaper, wrong) results, which is why the contract prices
//! it: `minStake >= stakePerThresholdBit * threshold`. The suggestion says what minimum stake it
//! needs and whether the one in force covers it.
//!
//! Only validated tasks are read: where all three nodes disagreed (aborted) nothing is known
//! about which result was honest. In a validated task, a pair above the threshold is one side
//! of a slashed node: if such pairs are frequent within 20 bits, the threshold slashes honest
//! nodes.

use std::collections::BTreeMap;

use axum::{Json, extract::State};
use sqlx::Row;
use verinfer_abi::{NO_RESULT, SLOT_PAIRS, TaskKind, TaskStatus};
use verinfer_wire::types::{CalibrationGroup, CalibrationView, ThresholdSuggestion};

use crate::{
    api::{ApiError, AppState},
    store::{Store, StoreError},
};

/// Most validated image tasks one calibration reads (the most recent, by task id).
pub const MAX_TASKS: u64 = 20_000;
/// Largest distance, bits, taken as two renderings of the same image (unrelated images lie
/// about 32 ± 4 bits apart).
pub const SAME_IMAGE_MAX: u8 = 20;
/// Fewest same-image pairs a group needs to count in the suggestion.
pub const MIN_GROUP_PAIRS: u64 = 30;
/// Share of a group's same-image pairs the suggested threshold accepts, per mille (99.9 %).
pub const ACCEPT_PER_MILLE: u64 = 999;
/// Counts in a histogram: distances 0..=64 of 64-bit pHashes.
pub const HISTOGRAM_LEN: usize = 65;
/// Name of a GPU model the index does not know (a node without a `nodes` row).
pub const UNKNOWN_MODEL: &str = "unknown";

/// The rule of [`suggest_threshold`], in words (in every answer).
pub const RULE: &str = "pHashes of unrelated images lie about 32 ± 4 bits apart, so pairs at most \
     20 bits apart are taken as the same image rendered on different hardware; the suggestion is \
     the smallest threshold accepting at least 99.9 % of those pairs in every group (GPU model \
     pair and precision) with at least 30 of them";

/// A group's own 99.9 % threshold: the smallest `t` such that at least 99.9 % of its same-image
/// pairs (distance ≤ [`SAME_IMAGE_MAX`]) lie at distance ≤ `t`; `None` with fewer than
/// [`MIN_GROUP_PAIRS`] same-image pairs. With fewer than 1,000 such pairs, 99.9 % of them is all
/// of them, so `t` is the largest same-image distance.
pub fn group_threshold(histogram: &[u64]) -> Option<u8> {
    let same = &histogram[..histogram.len().min(usize::from(SAME_IMAGE_MAX) + 1)];
    let total: u64 = same.iter().sum();
    if total < MIN_GROUP_PAIRS {
        return None;
    }
    // ceil(total * 999 / 1000)
    let needed = (total * ACCEPT_PER_MILLE).div_ceil(1000);
    let mut seen = 0;
    for (distance, count) in same.iter().enumerate() {
        seen += count;
        if seen >= needed {
            return u8::try_from(distance).ok();
        }
    }
    None
}

/// The suggested threshold and why, from the groups' histograms ([`RULE`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    /// The threshold (`None`: too little data).
    pub threshold: Option<u8>,
    /// Index (in the given order) of the group that decides it.
    pub deciding_group: Option<usize>,
    /// Groups with enough same-image pairs to count.
    pub groups_counted: usize,
}

/// The suggested threshold: the largest [`group_threshold`] over the groups that have one
/// (`None` when none has). Never above [`SAME_IMAGE_MAX`].
pub fn suggest_threshold<'a>(histograms: impl IntoIterator<Item = &'a [u64]>) -> Suggestion {
    let mut suggestion = Suggestion {
        threshold: None,
        deciding_group: None,
        groups_counted: 0,
    };
    for (index, histogram) in histograms.into_iter().enumerate() {
        let Some(threshold) = group_threshold(histogram) else {
            continue;
        };
        suggestion.groups_counted += 1;
        if suggestion.threshold.is_none_or(|best| threshold > best) {
            suggestion.threshold = Some(threshold);
            suggestion.deciding_group = Some(index);
        }
    }
    suggestion
}

/// The distance at quantile `per_mille / 1000` (nearest rank) of a histogram with `total > 0`.
fn quantile(histogram: &[u64], total: u64, per_mille: u64) -> u8 {
    let rank = (total * per_mille).div_ceil(1000).max(1);
    let mut seen = 0;
    for (distance, count) in histogram.iter().enumerate() {
        seen += count;
        if seen >= rank {
            return u8::try_from(distance).unwrap_or(u8::MAX);
        }
    }
    u8::try_from(histogram.len().saturating_sub(1)).unwrap_or(u8::MAX)
}

/// Group key: the sorted model names and the precision.
type GroupKey = (String, String, Option<String>);

/// Distances read, before they become a [`CalibrationView`].
#[derive(Debug, Default)]
pub struct Histograms {
    groups: BTreeMap<GroupKey, Vec<u64>>,
    tasks: u64,
}

impl Histograms {
    /// Counts one task's distances. `models`: its nodes' GPU model names by slot (`None`: no node
    /// or an unknown one); `distances`: as `TaskSettled` gives them (pair-major, one per image);
    /// [`NO_RESULT`] entries, distances above 64 and a list that is not three equal parts are
    /// skipped.
    pub fn add_task(
        &mut self,
        models: [Option<&str>; 3],
        precision: Option<&str>,
        distances: &[u16],
    ) {
        self.tasks += 1;
        if distances.is_empty() || !distances.len().is_multiple_of(SLOT_PAIRS.len()) {
            return;
        }
        let per_pair = distances.len() / SLOT_PAIRS.len();
        for (pair, (a, b)) in SLOT_PAIRS.iter().enumerate() {
            let mut names = [
                models[*a].unwrap_or(UNKNOWN_MODEL).to_owned(),
                models[*b].unwrap_or(UNKNOWN_MODEL).to_owned(),
            ];
            names.sort();
            let [first, second] = names;
            let key = (first, second, precision.map(str::to_owned));
            for &distance in &distances[pair * per_pair..(pair + 1) * per_pair] {
                if distance == NO_RESULT || usize::from(distance) >= HISTOGRAM_LEN {
                    continue;
                }
                self.groups
                    .entry(key.clone())
                    .or_insert_with(|| vec![0; HISTOGRAM_LEN])[usize::from(distance)] += 1;
            }
        }
    }

    /// The view: groups with their statistics (most pairs first), the suggestion against
    /// `threshold` and the stake parameters (decimal base units) in force.
    pub fn view(
        self,
        threshold: Option<u8>,
        stake_per_threshold_bit: Option<u128>,
        min_stake: Option<u128>,
        capped: bool,
    ) -> CalibrationView {
        let mut groups: Vec<CalibrationGroup> = self
            .groups
            .into_iter()
            .map(|((first, second, precision), histogram)| {
                group_view([first, second], precision, histogram, threshold)
            })
            .collect();
        groups.sort_by(|a, b| {
            b.pairs
                .cmp(&a.pairs)
                .then_with(|| a.gpu_models.cmp(&b.gpu_models))
                .then_with(|| a.precision.cmp(&b.precision))
        });
        let suggestion = suggestion_view(&groups, threshold, stake_per_threshold_bit, min_stake);
        CalibrationView {
            threshold,
            stake_per_threshold_bit: stake_per_threshold_bit.map(|v| v.to_string()),
            min_stake: min_stake.map(|v| v.to_string()),
            tasks_read: self.tasks,
            max_tasks: MAX_TASKS,
            capped,
            pairs: groups.iter().map(|g| g.pairs).sum(),
            groups,
            suggestion,
        }
    }
}

fn group_view(
    gpu_models: [String; 2],
    precision: Option<String>,
    histogram: Vec<u64>,
    threshold: Option<u8>,
) -> CalibrationGroup {
    let pairs: u64 = histogram.iter().sum();
    let above_threshold = threshold.map_or(0, |t| {
        histogram.iter().skip(usize::from(t) + 1).sum::<u64>()
    });
    let same_image_pairs = histogram[..=usize::from(SAME_IMAGE_MAX)].iter().sum();
    let max = histogram
        .iter()
        .rposition(|&count| count > 0)
        .and_then(|d| u8::try_from(d).ok())
        .unwrap_or(0);
    CalibrationGroup {
        gpu_models,
        precision,
        pairs,
        above_threshold,
        same_image_pairs,
        p50: quantile(&histogram, pairs, 500),
        p90: quantile(&histogram, pairs, 900),
        p99: quantile(&histogram, pairs, 990),
        max,
        suggested_threshold: group_threshold(&histogram),
        histogram,
    }
}

/// A group's name for a person: `a × b (precision)`.
pub fn group_label(group: &CalibrationGroup) -> String {
    let [a, b] = &group.gpu_models;
    let precision = group.precision.as_deref().unwrap_or("precision unknown");
    format!("{a} × {b} ({precision})")
}

fn suggestion_view(
    groups: &[CalibrationGroup],
    current: Option<u8>,
    stake_per_threshold_bit: Option<u128>,
    min_stake: Option<u128>,
) -> ThresholdSuggestion {
    let suggestion = suggest_threshold(groups.iter().map(|g| g.histogram.as_slice()));
    let (Some(threshold), Some(deciding)) = (suggestion.threshold, suggestion.deciding_group)
    else {
        let same: u64 = groups.iter().map(|g| g.same_image_pairs).sum();
        return ThresholdSuggestion {
            threshold: None,
            rule: RULE.to_owned(),
            reason: format!(
                "too little data: no group has {MIN_GROUP_PAIRS} pairs within {SAME_IMAGE_MAX} \
                 bits yet ({same} such pairs in {} group(s)); let more image tasks validate \
                 before calibrating",
                groups.len()
            ),
            min_stake_needed: None,
            min_stake_sufficient: None,
        };
    };
    let skipped = groups.len() - suggestion.groups_counted;
    let mut reason = format!(
        "{} decides it: 99.9 % of its {} same-image pairs lie within {threshold} bits \
         ({} of {} group(s) have enough pairs to count",
        group_label(&groups[deciding]),
        groups[deciding].same_image_pairs,
        suggestion.groups_counted,
        groups.len(),
    );
    if skipped > 0 {
        reason.push_str(&format!(
            "; {skipped} with fewer than {MIN_GROUP_PAIRS} same-image pairs are left out"
        ));
    }
    reason.push(')');
    if let Some(current) = current {
        // Same-image pairs the threshold in force rejects: honest results judged disagreeing.
        let rejected: u64 = groups
            .iter()
            .map(|g| {
                g.histogram[..=usize::from(SAME_IMAGE_MAX)]
                    .iter()
                    .skip(usize::from(current) + 1)
                    .sum::<u64>()
            })
            .sum();
        let same: u64 = groups.iter().map(|g| g.same_image_pairs).sum();
        reason.push_str(&match threshold.cmp(&current) {
            std::cmp::Ordering::Equal => format!(". The threshold in force, {current}, is it"),
            std::cmp::Ordering::Greater => format!(
                ". The threshold in force, {current}, is lower: it rejects {rejected} of {same} \
                 same-image pairs, slashing honest nodes"
            ),
            std::cmp::Ordering::Less => format!(
                ". The threshold in force, {current}, is higher than honest nodes need: it \
                 accepts results up to {current} bits off, a lower one lets fewer loose \
                 results through"
            ),
        });
    }
    let needed = stake_per_threshold_bit.map(|bit| bit * u128::from(threshold));
    let sufficient = needed.zip(min_stake).map(|(needed, min)| min >= needed);
    if let Some(needed) = needed {
        reason.push_str(&format!(
            ". It needs minStake >= stakePerThresholdBit × {threshold} = {needed}"
        ));
        match (sufficient, min_stake) {
            (Some(true), Some(min)) => {
                reason.push_str(&format!(" (the minStake in force, {min}, covers it)"));
            }
            (Some(false), Some(min)) => reason.push_str(&format!(
                " (the minStake in force, {min}, does not: raise it with the threshold)"
            )),
            _ => {}
        }
    }
    ThresholdSuggestion {
        threshold: Some(threshold),
        rule: RULE.to_owned(),
        reason,
        min_stake_needed: needed.map(|v| v.to_string()),
        min_stake_sufficient: sufficient,
    }
}

/// Reads the most recent [`MAX_TASKS`] validated image tasks with their nodes' GPU models and
/// their args' precision, and builds the calibration against the parameters in force.
pub async fn calibration(store: &Store) -> Result<CalibrationView, StoreError> {
    let rows = sqlx::query(
        "SELECT t.task_id, t.distances, a.precision, n0.gpu_model_name AS model0, \
         n1.gpu_model_name AS model1, n2.gpu_model_name AS model2 \
         FROM tasks t \
         LEFT JOIN args_info a ON a.args_hash = t.args_hash \
         LEFT JOIN task_nodes s0 ON s0.task_id = t.task_id AND s0.slot = 0 \
         LEFT JOIN nodes n0 ON n0.address = s0.node \
         LEFT JOIN task_nodes s1 ON s1.task_id = t.task_id AND s1.slot = 1 \
         LEFT JOIN nodes n1 ON n1.address = s1.node \
         LEFT JOIN task_nodes s2 ON s2.task_id = t.task_id AND s2.slot = 2 \
         LEFT JOIN nodes n2 ON n2.address = s2.node \
         WHERE t.kind = $1 AND t.status = $2 \
         ORDER BY t.task_id DESC LIMIT $3",
    )
    .bind(TaskKind::Image.as_str())
    .bind(TaskStatus::Validated.wire_name())
    .bind(i64::try_from(MAX_TASKS + 1).unwrap_or(i64::MAX))
    .fetch_all(store.pool())
    .await?;
    let capped = rows.len() as u64 > MAX_TASKS;
    let mut histograms = Histograms::default();
    for row in rows
        .iter()
        .take(usize::try_from(MAX_TASKS).unwrap_or(usize::MAX))
    {
        let task_id: i64 = row.try_get("task_id")?;
        let distances: Option<String> = row.try_get("distances")?;
        let distances: Vec<u16> = match distances.as_deref() {
            None | Some("") => Vec::new(),
            Some(text) => serde_json::from_str(text).map_err(|_| StoreError::Corrupt {
                table: "tasks",
                column: "distances",
                value: format!("task {task_id}: {text}"),
            })?,
        };
        let precision: Option<String> = row.try_get("precision")?;
        let models: [Option<String>; 3] = [
            row.try_get("model0")?,
            row.try_get("model1")?,
            row.try_get("model2")?,
        ];
        histograms.add_task(
            [
                models[0].as_deref(),
                models[1].as_deref(),
                models[2].as_deref(),
            ],
            precision.as_deref(),
            &distances,
        );
    }
    let (active, scheduled) = store.params().await?;
    let now = u64::try_from(crate::store::now_unix()).unwrap_or_default();
    // In force: as `GET /v1/params` (a scheduled version counts from its effective time).
    let in_force = match (active, scheduled) {
        (_, Some(scheduled)) if scheduled.effective_at <= now => Some(scheduled),
        (active, _) => active,
    };
    let params = in_force.map(|record| record.params);
    Ok(histograms.view(
        params.as_ref().map(|p| p.threshold),
        params.as_ref().map(|p| p.stakePerThresholdBit.to::<u128>()),
        params.as_ref().map(|p| p.minStake.to::<u128>()),
        capped,
    ))
}

/// `GET /v1/calibration`: [`calibration`].
pub async fn get_calibration(
    State(state): State<AppState>,
) -> Result<Json<CalibrationView>, ApiError> {
    Ok(Json(calibration(&state.inner().store).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(entries: &[(usize, u64)]) -> Vec<u64> {
        let mut histogram = vec![0; HISTOGRAM_LEN];
        for &(distance, count) in entries {
            histogram[distance] = count;
        }
        histogram
    }

    #[test]
    fn too_few_same_image_pairs_suggest_nothing() {
        // 29 same-image pairs, and plenty of unrelated ones that do not count.
        let h = histogram(&[(0, 20), (3, 9), (32, 500)]);
        assert_eq!(group_threshold(&h), None);
        let s = suggest_threshold([h.as_slice()]);
        assert_eq!(s.threshold, None);
        assert_eq!(s.groups_counted, 0);
        assert_eq!(
            suggest_threshold(std::iter::empty::<&[u64]>()).threshold,
            None
        );
    }

    #[test]
    fn under_a_thousand_pairs_every_same_image_pair_is_accepted() {
        let h = histogram(&[(0, 25), (2, 4), (5, 1), (30, 10)]);
        assert_eq!(group_threshold(&h), Some(5));
    }

    #[test]
    fn one_outlier_in_a_thousand_is_let_go() {
        // 999 pairs within 3 bits, one at 12: 99.9 % is reached at 3.
        let h = histogram(&[(0, 900), (3, 99), (12, 1)]);
        assert_eq!(group_threshold(&h), Some(3));
        // Two outliers in 1000: 99.9 % needs one of them.
        let h = histogram(&[(0, 900), (3, 98), (12, 2)]);
        assert_eq!(group_threshold(&h), Some(12));
    }

    #[test]
    fn the_loosest_group_with_enough_data_decides() {
        let tight = histogram(&[(0, 100), (2, 10)]);
        let loose = histogram(&[(1, 40), (9, 5)]);
        let sparse = histogram(&[(18, 5)]);
        let s = suggest_threshold([tight.as_slice(), loose.as_slice(), sparse.as_slice()]);
        assert_eq!(s.threshold, Some(9));
        assert_eq!(s.deciding_group, Some(1));
        assert_eq!(s.groups_counted, 2);
    }

    #[test]
    fn never_above_the_same_image_bound() {
        let h = histogram(&[(20, 50), (21, 1000), (40, 1000)]);
        assert_eq!(group_threshold(&h), Some(SAME_IMAGE_MAX));
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let h = histogram(&[(0, 50), (4, 40), (10, 9), (33, 1)]);
        assert_eq!(quantile(&h, 100, 500), 0);
        assert_eq!(quantile(&h, 100, 900), 4);
        assert_eq!(quantile(&h, 100, 990), 10);
        assert_eq!(quantile(&h, 100, 1000), 33);
    }

    #[test]
    fn tasks_group_by_sorted_model_pair_and_skip_missing_results() {
        let mut h = Histograms::default();
        // Two images; pair (0,2) has no result for image 1.
        h.add_task(
            [Some("b"), Some("a"), Some("b")],
            Some("f16"),
            &[1, 2, 3, NO_RESULT, 0, 64],
        );
        // Unchecked sampled task: nothing.
        h.add_task([Some("a"), None, None], None, &[]);
        let view = h.view(Some(2), Some(10), Some(100), false);
        assert_eq!(view.tasks_read, 2);
        assert_eq!(view.pairs, 5);
        assert_eq!(view.groups.len(), 2);
        let ab = &view.groups[0];
        assert_eq!(ab.gpu_models, ["a".to_owned(), "b".to_owned()]);
        assert_eq!(ab.precision.as_deref(), Some("f16"));
        assert_eq!((ab.pairs, ab.above_threshold, ab.max), (4, 1, 64));
        assert_eq!(ab.histogram[0], 1);
        assert_eq!(ab.histogram[64], 1);
        let bb = &view.groups[1];
        assert_eq!(bb.gpu_models, ["b".to_owned(), "b".to_owned()]);
        assert_eq!((bb.pairs, bb.above_threshold), (1, 1));
        assert_eq!(view.suggestion.threshold, None);
        assert!(view.suggestion.reason.contains("too little data"));
    }

    #[test]
    fn suggestion_prices_the_threshold_in_stake() {
        let mut h = Histograms::default();
        for _ in 0..40 {
            h.add_task([Some("x"); 3], Some("f32"), &[0, 6, 3]);
        }
        let view = h.view(Some(4), Some(10), Some(50), false);
        let s = &view.suggestion;
        assert_eq!(s.threshold, Some(6));
        assert_eq!(s.min_stake_needed.as_deref(), Some("60"));
        assert_eq!(s.min_stake_sufficient, Some(false));
        assert!(
            s.reason.contains("rejects 40 of 120 same-image pairs"),
            "{}",
            s.reason
        );
        assert!(s.reason.contains("does not"), "{}", s.reason);
        let covered = Histograms {
            groups: BTreeMap::from([(
                ("x".to_owned(), "x".to_owned(), None),
                histogram(&[(1, 30)]),
            )]),
            tasks: 10,
        }
        .view(Some(1), Some(10), Some(50), true);
        assert_eq!(covered.suggestion.threshold, Some(1));
        assert_eq!(covered.suggestion.min_stake_sufficient, Some(true));
        assert!(covered.capped);
    }
}
