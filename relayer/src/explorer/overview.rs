//! `GET /explorer`: the deployment at a glance.

use axum::{
    extract::{Query, State},
    response::Html,
};
use maud::{Markup, html};
use verinfer_abi::{TaskKind, format_bps};

use super::{
    ExplorerQueries, PAGE_ROWS, PageError, PageQuery, card, layout, node_link, short_hex,
    status_badge, task_link, tokens,
};
use crate::{api::AppState, api::types::params_view, store::TaskRecord};

/// Slashes listed on the overview.
const LATEST_SLASHES: u64 = 10;

pub(super) async fn page(
    State(state): State<AppState>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Html<String>, PageError> {
    let Query(query) = query.map_err(|rejection| PageError::bad_request(rejection.body_text()))?;
    let store = &state.inner().store;
    let queries = ExplorerQueries::new(store);
    let (active, scheduled) = store.params().await?;
    let now = u64::try_from(crate::store::now_unix()).unwrap_or_default();
    let params = params_view(active.as_ref(), scheduled.as_ref(), now);
    let counts = queries.status_counts().await?;
    let nodes_by_model = queries.nodes_by_model().await?;
    let total: u64 = counts.iter().map(|(_, count)| count).sum();
    let mut models = store.gpu_models().await?;
    // Models with registered nodes first, then the registry's order.
    models.sort_by_key(|model| {
        let registered = nodes_by_model_has(&nodes_by_model, &model.name);
        (!registered, model.position)
    });
    let tasks = queries.latest_tasks(query.before, PAGE_ROWS).await?;
    let slashes = queries.latest_slashes(LATEST_SLASHES).await?;
    let last_block = store.last_indexed_block().await?.map(|(block, _)| block);

    let content = html! {
        h1 { "verinfer explorer" }
        p.muted {
            (total) " tasks indexed"
            @if let Some(block) = last_block { ", up to block " (block) }
            ". Each task's page shows why the network decided what it decided."
        }
        section #parameters aria-labelledby="parameters-title" {
            h2 #parameters-title { "Parameters" }
            @match &params {
                Some(params) => {
                    @let p = &params.in_force.params;
                    div.cards {
                        (card("pHash threshold", html! { (p.threshold) " bits" }))
                        (card("Min stake", super::decimal_tokens(&state, &p.min_stake)))
                        (card("Stake per threshold bit", super::decimal_tokens(&state, &p.stake_per_threshold_bit)))
                        (card("Slash", html! { (format_bps(p.slash_share_bps)) " of stake" }))
                        (card("Commit window", html! { (p.commit_window) " s" }))
                        (card("Reveal window", html! { (p.reveal_window) " s" }))
                        (card("Queue timeout", html! { (p.queue_timeout) " s" }))
                        (card("Min task fee", super::decimal_tokens(&state, &p.min_task_fee)))
                        (card("Min fee per image", super::decimal_tokens(&state, &p.min_image_fee)))
                        (card("Protocol fee", html! { (format_bps(p.protocol_fee_bps)) }))
                        (card("Sampling rate p", html! { (format_bps(p.sampling_bps)) }))
                        (card("Min text pool", html! { (p.min_text_pool) " nodes" }))
                    }
                    p.note {
                        "Version " (params.in_force.version) " in force"
                        @if let Some(next) = &params.scheduled {
                            "; version " (next.version) " takes effect at "
                            (super::utc(next.effective_at))
                        }
                        ". " a href="/v1/params" { "Raw JSON" }
                    }
                }
                None => p.muted { "No parameter version indexed yet." }
            }
        }
        section #tasks-by-status aria-labelledby="status-title" {
            h2 #status-title { "Tasks by status" }
            @if counts.is_empty() {
                p.muted { "No tasks yet." }
            } @else {
                div.cards {
                    @for (status, count) in &counts {
                        (card(status.wire_name(), html! { (count) }))
                    }
                }
            }
        }
        section #nodes-by-model aria-labelledby="models-title" {
            h2 #models-title { "Nodes by GPU model" }
            @if models.is_empty() {
                p.muted { "No GPU model registered yet." }
            } @else {
                div.table-wrap {
                    table {
                        thead { tr {
                            th scope="col" { "GPU model" } th.num scope="col" { "VRAM" }
                            th scope="col" { "Open to new nodes" }
                            th.num scope="col" { "Available" } th scope="col" { "All registered, by state" }
                        } }
                        tbody {
                            @for model in &models {
                                tr {
                                    th scope="row" { (model.name) }
                                    td.num { (super::gib(model.vram_mib)) }
                                    td { @if model.active { "yes" } @else { "no" } }
                                    td.num { (model.available_nodes) }
                                    td {
                                        @for (name, state, count) in nodes_by_model.iter().filter(|(name, ..)| *name == model.name) {
                                            @let _ = name;
                                            span.status.neutral { (state) ": " (count) } " "
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section #latest-tasks aria-labelledby="tasks-title" {
            h2 #tasks-title {
                @if query.before.is_some() { "Tasks" } @else { "Latest tasks" }
            }
            (task_table(&state, &tasks))
            nav.pager aria-label="Task pages" {
                @if query.before.is_some() { a href="/explorer" { "Newest" } }
                @if tasks.len() as u64 == PAGE_ROWS {
                    @if let Some(last) = tasks.last() {
                        a href={ "/explorer?before=" (last.chain.task_id) } { "Older tasks" }
                    }
                }
            }
        }
        section #latest-slashes aria-labelledby="slashes-title" {
            h2 #slashes-title { "Latest slashes" }
            @if slashes.is_empty() {
                p.muted { "No node has been slashed." }
            } @else {
                div.table-wrap {
                    table {
                        thead { tr {
                            th scope="col" { "Node" } th scope="col" { "Task" } th scope="col" { "Reason" }
                            th.num scope="col" { "Amount" } th.num scope="col" { "Block" }
                        } }
                        tbody {
                            @for slash in &slashes {
                                tr.slash {
                                    td { (node_link(slash.node)) }
                                    td { (task_link(slash.task_id)) }
                                    td { (slash.reason.wire_name()) }
                                    td.num { (tokens(&state, slash.amount)) }
                                    td.num { (slash.block) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout("Overview", false, content))
}

fn nodes_by_model_has(nodes_by_model: &[(String, String, u64)], model: &str) -> bool {
    nodes_by_model.iter().any(|(name, ..)| name == model)
}

/// A table of tasks (the overview's latest tasks).
pub(super) fn task_table(state: &AppState, tasks: &[TaskRecord]) -> Markup {
    html! {
        @if tasks.is_empty() {
            p.muted { "No tasks." }
        } @else {
            div.table-wrap {
                table {
                    thead { tr {
                        th scope="col" { "Task" } th scope="col" { "Kind" } th scope="col" { "Mode" }
                        th scope="col" { "Status" } th scope="col" { "Creator" }
                        th.num scope="col" { "Fee" } th.num scope="col" { "Created in block" }
                    } }
                    tbody {
                        @for task in tasks {
                            tr {
                                td { (task_link(task.chain.task_id)) }
                                td {
                                    (task.chain.kind.as_str())
                                    @if task.chain.kind == TaskKind::Image {
                                        " ×" (task.chain.image_count)
                                    }
                                }
                                td { (task.chain.mode.wire_name()) }
                                td { (status_badge(task.chain.status)) }
                                td { (short_hex(&task.chain.creator.to_string())) }
                                td.num { (tokens(state, task.chain.fee)) }
                                td.num { (task.created_block) }
                            }
                        }
                    }
                }
            }
        }
    }
}
