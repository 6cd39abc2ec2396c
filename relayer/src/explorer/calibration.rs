//! `GET /explorer/calibration`: the pairwise pHash distances of recent validated image tasks by
//! GPU-model pair and precision, against the threshold in force, with the suggested threshold
//! ([`crate::calibration`]). Each histogram has its counts as a table too.

use axum::{extract::State, response::Html};
use maud::{Markup, html};
use verinfer_wire::types::{CalibrationGroup, CalibrationView};

use super::{PageError, layout};
use crate::{
    api::AppState,
    calibration::{SAME_IMAGE_MAX, calibration, group_label},
};

pub(super) async fn page(State(state): State<AppState>) -> Result<Html<String>, PageError> {
    let view = calibration(&state.inner().store).await?;
    Ok(layout("Calibration", false, render(&state, &view)))
}

fn render(state: &AppState, view: &CalibrationView) -> Markup {
    let threshold = view.threshold;
    html! {
        h1 { "Threshold calibration" }
        p.note {
            "How far apart the pHashes of honest nodes' images lie, by the pair of GPU models "
            "that produced them and the precision the task asked for: the distances the contract "
            "computed when it settled the latest validated image tasks. Two results agree when "
            "their distance is at most the threshold; a threshold below what honest hardware "
            "pairs produce slashes honest nodes, one far above it lets loose results through."
        }
        section aria-labelledby="summary" {
            h2 #summary { "Summary" }
            div.cards {
                div.card {
                    div.label { "Threshold in force" }
                    div.value { (bits(threshold)) }
                }
                div.card {
                    div.label { "Suggested threshold" }
                    div.value { (bits(view.suggestion.threshold)) }
                }
                div.card {
                    div.label { "Tasks read" }
                    div.value {
                        (view.tasks_read)
                        @if view.capped { " (latest " (view.max_tasks) ")" }
                    }
                }
                div.card {
                    div.label { "Pairs" }
                    div.value { (view.pairs) }
                }
                div.card {
                    div.label { "Stake per threshold bit" }
                    div.value { (amount(state, view.stake_per_threshold_bit.as_deref())) }
                }
                div.card {
                    div.label { "Min stake in force" }
                    div.value { (amount(state, view.min_stake.as_deref())) }
                }
            }
            h3 { "Suggestion" }
            p { (view.suggestion.reason) "." }
            @if let Some(needed) = &view.suggestion.min_stake_needed {
                p {
                    "Minimum stake it needs: " (amount(state, Some(needed.as_str())))
                    @match view.suggestion.min_stake_sufficient {
                        Some(true) => " (covered by the min stake in force).",
                        Some(false) => " (more than the min stake in force: a parameter version with this threshold must raise minStake too).",
                        None => ".",
                    }
                }
            }
            p.note { "Rule: " (view.suggestion.rule) "." }
        }
        section aria-labelledby="groups" {
            h2 #groups { "Groups" }
            @if view.groups.is_empty() {
                p { "No validated image task with distances is indexed yet." }
            } @else {
                div.table-wrap {
                    table {
                        caption.note { "Distances in bits; “above” counts pairs the threshold in force judges as disagreeing." }
                        thead {
                            tr {
                                th scope="col" { "GPU models" }
                                th scope="col" { "Precision" }
                                th.num scope="col" { "Pairs" }
                                th.num scope="col" { "p50" }
                                th.num scope="col" { "p90" }
                                th.num scope="col" { "p99" }
                                th.num scope="col" { "Max" }
                                th.num scope="col" { "Above" }
                                th.num scope="col" { "Own 99.9 %" }
                            }
                        }
                        tbody {
                            @for (index, group) in view.groups.iter().enumerate() {
                                tr {
                                    td { a href={ "#group-" (index) } { (models(group)) } }
                                    td { (group.precision.as_deref().unwrap_or("unknown")) }
                                    td.num { (group.pairs) }
                                    td.num { (group.p50) }
                                    td.num { (group.p90) }
                                    td.num { (group.p99) }
                                    td.num { (group.max) }
                                    td.num { (group.above_threshold) }
                                    td.num { (bits(group.suggested_threshold)) }
                                }
                            }
                        }
                    }
                }
                @for (index, group) in view.groups.iter().enumerate() {
                    (group_section(index, group, threshold))
                }
            }
        }
    }
}

/// One group: its histogram (bars above the threshold marked `.over`) and the counts as a table.
fn group_section(index: usize, group: &CalibrationGroup, threshold: Option<u8>) -> Markup {
    let label = group_label(group);
    let peak = group.histogram.iter().copied().max().unwrap_or(0).max(1);
    let over = |distance: usize| threshold.is_some_and(|t| distance > usize::from(t));
    let summary = match threshold {
        Some(t) => format!(
            "Histogram of {} pairs over distances 0 to 64 bits: {} within the threshold {t}, {} above it",
            group.pairs,
            group.pairs - group.above_threshold,
            group.above_threshold
        ),
        None => format!(
            "Histogram of {} pairs over distances 0 to 64 bits",
            group.pairs
        ),
    };
    html! {
        section.group id={ "group-" (index) } aria-label=(label) {
            h3 { (label) }
            p.note {
                (group.pairs) " pairs, " (group.same_image_pairs) " within " (SAME_IMAGE_MAX)
                " bits (the same image); bar height ∝ √count"
                @if let Some(t) = threshold { "; red bars lie above the threshold " (t) }
                "."
            }
            div.hist role="img" aria-label=(summary) {
                @for (distance, &count) in group.histogram.iter().enumerate() {
                    @let height = bar_height(count, peak);
                    @let marker = if threshold.is_some_and(|t| usize::from(t) == distance) {
                        "; box-shadow: 2px 0 0 var(--warn)"
                    } else {
                        ""
                    };
                    span class=[over(distance).then_some("over")]
                        style={ "height: " (format!("{height:.1}")) "%" (marker) }
                        title={ "distance " (distance) ": " (count) } {}
                }
            }
            p.note aria-hidden="true" { "0 … 64 bits" }
            details {
                summary { "Counts by distance" }
                div.table-wrap {
                    table {
                        thead {
                            tr {
                                th.num scope="col" { "Distance (bits)" }
                                th.num scope="col" { "Pairs" }
                                th scope="col" { "Judged" }
                            }
                        }
                        tbody {
                            @for (distance, &count) in group.histogram.iter().enumerate() {
                                @if count > 0 {
                                    tr {
                                        td.num { (distance) }
                                        td.num { (count) }
                                        td {
                                            @if threshold.is_none() { "unknown" }
                                            @else if over(distance) { "disagree" }
                                            @else { "agree" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A bar's height in percent of the hist's: √count scaled to the peak, at least 2 % when any.
fn bar_height(count: u64, peak: u64) -> f64 {
    if count == 0 {
        return 0.0;
    }
    ((count as f64).sqrt() / (peak as f64).sqrt() * 100.0).max(2.0)
}

fn models(group: &CalibrationGroup) -> String {
    let [a, b] = &group.gpu_models;
    format!("{a} × {b}")
}

fn bits(value: Option<u8>) -> Markup {
    html! {
        @match value {
            Some(value) => { (value) " bits" },
            None => span.muted { "none" },
        }
    }
}

/// A decimal amount of base units, in tokens when the relayer knows the token's decimals.
fn amount(state: &AppState, value: Option<&str>) -> Markup {
    match value {
        Some(text) => super::decimal_tokens(state, text),
        None => html! { span.muted { "unknown" } },
    }
}
