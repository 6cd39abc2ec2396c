//! `GET /explorer/nodes/{address}`: a node's GPU and VRAM, stake over time, tasks, agreement
//! rate and every slash with the task that caused it.

use std::fmt::Write as _;

use alloy_primitives::Address;
use axum::{
    extract::{Path, Query, State},
    response::Html,
};
use maud::{Markup, html};
use verinfer_abi::VerinferEvent;

use super::{
    ExplorerQueries, NodeTaskRow, PAGE_ROWS, PageError, PageQuery, TimelineEvent, card, layout,
    short_hex, status_badge, task_link, tokens,
};
use crate::api::AppState;

/// Stake changes drawn in the stake chart (the newest ones).
const STAKE_POINTS: u64 = 500;
/// Slashes listed (the newest; the count says how many there are in all).
const SLASH_ROWS: u64 = 100;

pub(super) async fn page(
    State(state): State<AppState>,
    Path(address): Path<String>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Html<String>, PageError> {
    let Query(query) = query.map_err(|rejection| PageError::bad_request(rejection.body_text()))?;
    let node: Address = address.parse().map_err(|_| {
        PageError::bad_request(format!(
            "{address:?} is not an address (0x and 40 hex digits)"
        ))
    })?;
    let store = &state.inner().store;
    let queries = ExplorerQueries::new(store);
    let record = queries.node(node).await?;
    let account = store.account(node).await?;
    let Some(record) = record else {
        // Not a node: perhaps a creator or a treasury with credits; show what is known.
        if account.credited == 0 {
            return Err(PageError::not_found(format!(
                "{node} has never joined as a node and has no credited balance"
            )));
        }
        let content = html! {
            h1 { "Account " code { (node) } }
            p { "Not a node. Credited " (tokens(&state, account.credited)) ", withdrawn "
                (tokens(&state, account.withdrawn)) ", claimable " (tokens(&state, account.claimable)) "." }
            p.note { a href={ "/v1/accounts/" (node) } { "Raw JSON" } }
        };
        return Ok(layout("Account", false, content));
    };
    let stake_events = queries.node_stake_events(node, STAKE_POINTS).await?;
    let slashes = queries.node_slashes(node, SLASH_ROWS).await?;
    let slash_count = queries.node_slash_count(node).await?;
    let tasks = queries.node_tasks(node, query.before, PAGE_ROWS).await?;
    let agreement = queries.node_agreement(node).await?;
    let title = format!("Node {}", short_address(node));
    let content = html! {
        h1 { "Node " code.address { (node) } }
        section #node-summary aria-label="Summary" {
            div.cards {
                (card("State", html! { (record.state.wire_name()) }))
                (card("GPU model (declared)", html! { (record.gpu_model_name) }))
                (card("VRAM", html! { (super::gib(record.vram_mib)) }))
                (card("Stake", tokens(&state, record.stake)))
                (card("Claimable", tokens(&state, account.claimable)))
                (card("Fee tier", html! { (record.fee_tier) }))
                (card("Agreement", html! {
                    @match agreement.rate_percent() {
                        Some(rate) => { (format!("{rate:.1}")) " % of " (agreement.settled) " settled" }
                        None => "no settled task"
                    }
                }))
                (card("Tasks", html! { (agreement.selected) }))
                (card("Current task", html! {
                    @if record.task_id == 0 { "none" } @else { (task_link(record.task_id)) }
                }))
            }
            p.note {
                "Node id " (record.node_id) ". Raw JSON: "
                a href={ "/v1/accounts/" (node) } { "account" } ", "
                a href="/v1/nodes" { "nodes" }
            }
        }
        section #stake aria-labelledby="stake-title" {
            h2 #stake-title { "Stake over time" }
            (stake_chart(&state, &stake_events))
        }
        section #slashes aria-labelledby="slashes-title" {
            h2 #slashes-title { "Slashes" }
            @if slashes.is_empty() {
                p.muted { "Never slashed." }
            } @else {
                p.note {
                    "Slashed " (slash_count) " time(s)"
                    @if slash_count > slashes.len() as u64 { "; the latest " (slashes.len()) " are listed" }
                    "."
                }
                div.table-wrap { table {
                    thead { tr {
                        th scope="col" { "Task" } th scope="col" { "Reason" } th.num scope="col" { "Amount" }
                        th.num scope="col" { "Block" } th scope="col" { "Transaction" }
                    } }
                    tbody { @for slash in &slashes {
                        tr.slash {
                            td { (task_link(slash.task_id)) }
                            td { (slash.reason.wire_name()) }
                            td.num { (tokens(&state, slash.amount)) }
                            td.num { (slash.block) }
                            td { (short_hex(&slash.tx_hash.to_string())) }
                        }
                    } }
                } }
            }
        }
        section #node-tasks aria-labelledby="node-tasks-title" {
            h2 #node-tasks-title { "Tasks" }
            (task_rows(&tasks))
            nav.pager aria-label="Task pages" {
                @if query.before.is_some() { a href={ "/explorer/nodes/" (node) } { "Newest" } }
                @if tasks.len() as u64 == PAGE_ROWS {
                    @if let Some(last) = tasks.last() {
                        a href={ "/explorer/nodes/" (node) "?before=" (last.task.chain.task_id) } { "Older tasks" }
                    }
                }
            }
        }
    };
    Ok(layout(&title, false, content))
}

fn short_address(address: Address) -> String {
    let full = address.to_string();
    format!("{}…{}", &full[..8], &full[full.len() - 4..])
}

fn task_rows(tasks: &[NodeTaskRow]) -> Markup {
    html! {
        @if tasks.is_empty() {
            p.muted { "No tasks." }
        } @else {
            div.table-wrap { table {
                thead { tr {
                    th scope="col" { "Task" } th scope="col" { "Kind" } th scope="col" { "As" }
                    th scope="col" { "Status" } th scope="col" { "Outcome for the node" }
                } }
                tbody { @for row in tasks {
                    tr {
                        td { (task_link(row.task.chain.task_id)) }
                        td { (row.task.chain.kind.as_str()) " · " (row.task.chain.mode.wire_name()) }
                        td { (super::tasks::slot_label(row.slot, row.task.chain.mode)) }
                        td { (status_badge(row.task.chain.status)) }
                        td {
                            @match row.agreed() {
                                Some(true) => span.status.good { "paid" },
                                Some(false) => span.status.bad { "not paid" },
                                None => span.muted { "open" },
                            }
                        }
                    }
                } }
            } }
        }
    }
}

/// The node's stake after each of its stake events, in chain order: `(block, stake)`.
fn stake_series(events: &[TimelineEvent]) -> Vec<(u64, u128)> {
    let mut stake: u128 = 0;
    let mut points = Vec::with_capacity(events.len());
    for event in events {
        match &event.event {
            VerinferEvent::NodeJoined { stake: joined, .. } => stake = *joined,
            VerinferEvent::StakeAdded { new_stake, .. } => stake = *new_stake,
            VerinferEvent::NodeRewarded { amount, .. } => stake = stake.saturating_add(*amount),
            VerinferEvent::NodeSlashed { amount, .. } => stake = stake.saturating_sub(*amount),
            VerinferEvent::NodeExited { .. } | VerinferEvent::NodeKicked { .. } => stake = 0,
            _ => continue,
        }
        points.push((event.block, stake));
    }
    points
}

fn stake_chart(state: &AppState, events: &[TimelineEvent]) -> Markup {
    let points = stake_series(events);
    if points.is_empty() {
        return html! { p.muted { "No stake events indexed." } };
    }
    let (width, height) = (600.0_f64, 120.0_f64);
    let max = points
        .iter()
        .map(|(_, stake)| *stake)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let count = points.len();
    // A step chart: the stake holds its value until the next change.
    let x_of = |index: usize| {
        if count == 1 {
            width
        } else {
            index as f64 * width / (count - 1) as f64
        }
    };
    let y_of = |stake: u128| height - (stake as f64 / max) * (height - 10.0);
    let mut polyline = String::new();
    let mut previous_y = None;
    for (index, (_, stake)) in points.iter().enumerate() {
        let (x, y) = (x_of(index), y_of(*stake));
        if let Some(previous_y) = previous_y {
            let _ = write!(polyline, "{x:.1},{previous_y:.1} ");
        } else if count == 1 {
            let _ = write!(polyline, "0,{y:.1} ");
        }
        let _ = write!(polyline, "{x:.1},{y:.1} ");
        previous_y = Some(y);
    }
    let (first, last) = (points[0], points[count - 1]);
    let changes: Vec<&TimelineEvent> = events.iter().rev().take(10).collect();
    html! {
        svg.stake viewBox="0 0 600 120" preserveAspectRatio="none" role="img"
            aria-label={ "Stake over " (count) " changes, from block " (first.0) " to block " (last.0) } {
            line x1="0" y1="120" x2="600" y2="120" {}
            polyline points=(polyline) {}
        }
        p.note {
            "From " (tokens(state, first.1)) " at block " (first.0) " to " (tokens(state, last.1))
            " at block " (last.0) " over " (count) " changes."
        }
        details {
            summary { "Latest changes" }
            div.table-wrap { table {
                thead { tr { th scope="col" { "Block" } th scope="col" { "Change" } th scope="col" { "Task" } } }
                tbody { @for event in changes {
                    tr {
                        td { (event.block) }
                        td { (event.event.name()) }
                        td { @if let Some(task) = event.event.task_id() { @if task != 0 { (task_link(task)) } } }
                    }
                } }
            } }
        }
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::B256;
    use verinfer_abi::SlashReason;

    use super::*;

    fn at(block: u64, event: VerinferEvent) -> TimelineEvent {
        TimelineEvent {
            block,
            log_index: 0,
            tx_hash: B256::ZERO,
            timestamp: None,
            event,
        }
    }

    #[test]
    fn stake_follows_joins_rewards_slashes_and_exits() {
        let node = Address::repeat_byte(1);
        let events = [
            at(
                1,
                VerinferEvent::NodeJoined {
                    node,
                    node_id: 1,
                    gpu_model: B256::ZERO,
                    gpu_model_name: "gpu".into(),
                    vram_mib: 8192,
                    stake: 100,
                    fee_tier: 0,
                },
            ),
            at(
                2,
                VerinferEvent::NodeRewarded {
                    node,
                    task_id: 1,
                    amount: 5,
                },
            ),
            at(
                3,
                VerinferEvent::NodeSlashed {
                    node,
                    task_id: 2,
                    amount: 50,
                    reason: SlashReason::Disagreed,
                },
            ),
            at(
                4,
                VerinferEvent::StakeAdded {
                    node,
                    amount: 10,
                    new_stake: 65,
                },
            ),
            at(
                5,
                VerinferEvent::NodeKicked {
                    node,
                    task_id: 3,
                    stake_returned: 65,
                },
            ),
        ];
        assert_eq!(
            stake_series(&events),
            vec![(1, 100), (2, 105), (3, 55), (4, 65), (5, 0)]
        );
    }
}
