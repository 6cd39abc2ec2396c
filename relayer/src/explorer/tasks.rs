//! `GET /explorer/tasks/{id}`: one task with its evidence — timeline, nodes, images side by side
//! with their pHash grids, the differing bits of every pair against the threshold (text: the
//! output and the digests), the verdict, payouts and slashes.

use std::collections::HashMap;

use alloy_primitives::{Address, B256};
use axum::{
    extract::{Path, State},
    response::Html,
};
use maud::{Markup, html};
use verinfer_abi::{
    NO_RESULT, SLOT_PAIRS, TaskKind, TaskStatus, ValidationMode, VerinferEvent, format_bps,
};
use verinfer_task::TextOutput;

use super::{
    ExplorerQueries, PageError, TimelineEvent, card, grid, layout, node_link, short_hex,
    status_badge, tokens, utc,
};
use crate::{
    api::AppState,
    blobs::BlobKind,
    store::{CreditRecord, NodeRecord, ResultRecord, TaskNodeRecord, TaskRecord},
};

/// Largest text output shown inline (longer ones are cut, with a link to the whole blob).
const MAX_TEXT_SHOWN: usize = 64 * 1024;

/// Everything the page shows, read before rendering.
struct TaskPage {
    task: TaskRecord,
    nodes: Vec<TaskNodeRecord>,
    records: HashMap<Address, NodeRecord>,
    events: Vec<TimelineEvent>,
    results: HashMap<Address, ResultRecord>,
    credits: Vec<CreditRecord>,
    /// The threshold the task was (or will be) judged against.
    threshold: Option<u8>,
    /// The text output of an agreeing node's verified upload (text tasks).
    text: Option<(B256, Result<TextOutput, String>)>,
    /// The task's GPU model name (text tasks).
    gpu_model_name: Option<String>,
}

pub(super) async fn page(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Html<String>, PageError> {
    let task_id = id
        .trim_start_matches('#')
        .parse::<u64>()
        .ok()
        .filter(|id| *id != 0)
        .ok_or_else(|| {
            PageError::bad_request(format!("task id {id:?} is not a positive integer"))
        })?;
    let page = load(&state, task_id).await?;
    let live = !page.task.chain.status.is_final();
    let title = format!("Task #{task_id}");
    Ok(layout(&title, live, render(&state, &page, live)))
}

async fn load(state: &AppState, task_id: u64) -> Result<TaskPage, PageError> {
    let store = &state.inner().store;
    let queries = ExplorerQueries::new(store);
    let task = store.task(task_id).await?.ok_or_else(|| {
        PageError::not_found(format!(
            "no task {task_id} is indexed (it may not exist yet, or the relayer has not reached its block)"
        ))
    })?;
    let nodes = store.task_nodes(task_id).await?;
    let addresses: Vec<Address> = nodes.iter().map(|node| node.node).collect();
    let records = queries
        .nodes_of(&addresses)
        .await?
        .into_iter()
        .map(|record| (record.address, record))
        .collect();
    let events = queries.task_events(task_id).await?;
    let results: HashMap<Address, ResultRecord> = store
        .results(task_id)
        .await?
        .into_iter()
        .map(|result| (result.node, result))
        .collect();
    let credits = store.task_credits(task_id).await?;
    let threshold = match &task.settlement {
        Some(settlement) => Some(settlement.threshold),
        None => store
            .params()
            .await?
            .0
            .map(|active| active.params.threshold),
    };
    let mut text = None;
    if task.chain.kind == TaskKind::Text {
        let agreeing = nodes.iter().find(|node| {
            task.settlement
                .as_ref()
                .is_some_and(|s| s.agreed(usize::from(node.slot)))
                && results.contains_key(&node.node)
        });
        if let Some(item) = agreeing
            .and_then(|node| results.get(&node.node))
            .and_then(|result| result.items.first())
        {
            let output = match state.inner().blobs.get(BlobKind::Text, item.blob).await {
                Ok(bytes) => serde_json::from_slice::<TextOutput>(&bytes)
                    .map_err(|error| format!("the stored output does not parse: {error}")),
                Err(error) => Err(format!("the blob store failed: {error}")),
            };
            text = Some((item.blob, output));
        }
    }
    let gpu_model_name = if task.chain.gpu_model == B256::ZERO {
        None
    } else {
        store.gpu_model_name(task.chain.gpu_model).await?
    };
    Ok(TaskPage {
        task,
        nodes,
        records,
        events,
        results,
        credits,
        threshold,
        text,
        gpu_model_name,
    })
}

fn render(state: &AppState, page: &TaskPage, live: bool) -> Markup {
    let task = &page.task;
    let chain = &task.chain;
    let id = chain.task_id;
    html! {
        h1 { "Task #" (id) " " (status_badge(chain.status)) }
        @if live {
            p.live-note role="status" { "In progress: this page updates by itself." }
        }
        section #summary aria-label="Summary" {
            div.cards {
                (card("Kind", html! {
                    (chain.kind.as_str())
                    @if chain.kind == TaskKind::Image { ", " (chain.image_count) " image(s)" }
                }))
                (card("Validation", html! {
                    (chain.mode.wire_name())
                    @if let Some(bps) = task.sampling_bps { " at p = " (format_bps(bps)) }
                }))
                (card("Creator", short_hex(&chain.creator.to_string())))
                (card("Fee", tokens(state, chain.fee)))
                @if let Some(name) = &page.gpu_model_name {
                    (card("GPU model (text tasks pair one model)", html! { (name) }))
                }
                (card("Min VRAM", html! { (super::gib(chain.min_vram_mib)) }))
                (card("Args", short_hex(&chain.args_hash.to_string())))
                (card("Parameters", html! { "version " (chain.params_version) }))
            }
            p.note {
                "Raw JSON: "
                a href={ "/v1/tasks/" (id) } { "task" } ", "
                a href={ "/v1/tasks/" (id) "/results" } { "verified results" } ", "
                a href={ "/v1/tasks/" (id) "/args" } { "args" }
            }
        }
        (verdict(state, page))
        (nodes_section(page))
        @match chain.kind {
            TaskKind::Image => {
                (images_section(page))
                (distances_section(page))
            }
            TaskKind::Text => (text_section(page)),
        }
        (timeline(state, page))
    }
}

/// How a page names a task's slot: node 1..3, or a sampled task's first node and checkers.
pub(super) fn slot_label(slot: u8, mode: ValidationMode) -> String {
    match (mode, slot) {
        (ValidationMode::Sampled, 0) => "first node".to_owned(),
        (ValidationMode::Sampled, _) => format!("checker {slot}"),
        _ => format!("node {}", slot + 1),
    }
}

fn verdict(state: &AppState, page: &TaskPage) -> Markup {
    let task = &page.task;
    let status = task.chain.status;
    let class = match status {
        TaskStatus::Validated => "good",
        TaskStatus::Aborted | TaskStatus::Errored | TaskStatus::Expired => "bad",
        TaskStatus::Cancelled => "",
        _ => "open",
    };
    let slashes: Vec<&TimelineEvent> = page
        .events
        .iter()
        .filter(|event| matches!(event.event, VerinferEvent::NodeSlashed { .. }))
        .collect();
    let agreeing: Vec<String> = page
        .nodes
        .iter()
        .filter(|node| {
            task.settlement
                .as_ref()
                .is_some_and(|s| s.agreed(usize::from(node.slot)))
        })
        .map(|node| slot_label(node.slot, task.chain.mode))
        .collect();
    html! {
        section #verdict.verdict.(class) aria-labelledby="verdict-title" {
            h2 #verdict-title { "Verdict" }
            p {
                @match status {
                    TaskStatus::Validated => {
                        @if task.settlement.as_ref().is_some_and(|s| !s.compared()) {
                            "Accepted unchecked: the sample draw did not choose a check, so the first node's result stands alone"
                            @if let Some(bps) = task.sampling_bps { " (checked with probability " (format_bps(bps)) ")" }
                            "."
                        } @else {
                            "Validated: " (agreeing.join(" and ")) " agreed"
                            @if task.chain.kind == TaskKind::Image {
                                @if let Some(threshold) = page.threshold {
                                    ", every image within " (threshold) " bits"
                                }
                            } @else { ", token for token" }
                            "."
                        }
                    }
                    TaskStatus::Aborted => "Aborted: no two results agreed; the fee was refunded.",
                    TaskStatus::Errored => "Errored: a majority reported the args invalid; the fee was refunded.",
                    TaskStatus::Cancelled => "Cancelled by its creator while queued; the fee was refunded.",
                    TaskStatus::Expired => "Expired: no nodes took it within the queue timeout; the fee was credited back.",
                    TaskStatus::Queued => "Queued: waiting for nodes to be drawn.",
                    TaskStatus::CheckQueued => "Chosen for a check: waiting for two checker nodes.",
                    TaskStatus::AwaitingSample => "The first node committed: a later block's hash decides whether two more nodes check it.",
                    TaskStatus::Committing => {
                        "Committing: the nodes compute and commit until "
                        (deadline(task.chain.commit_deadline)) "."
                    }
                    TaskStatus::Revealing => {
                        "Revealing: the nodes reveal their results until "
                        (deadline(task.chain.reveal_deadline)) "."
                    }
                    TaskStatus::None => "Created.",
                }
            }
            @if let Some(settlement) = &task.settlement {
                @if settlement.reward_per_node > 0 {
                    p { "Each agreeing node was paid " (tokens(state, settlement.reward_per_node)) " into its stake." }
                }
            }
            @if !page.credits.is_empty() {
                h3 { "Credits" }
                div.table-wrap { table {
                    thead { tr { th scope="col" { "Account" } th scope="col" { "Why" } th.num scope="col" { "Amount" } th.num scope="col" { "Block" } } }
                    tbody { @for credit in &page.credits {
                        tr {
                            td { (node_link(credit.account)) }
                            td { (credit.reason.wire_name()) }
                            td.num { (tokens(state, credit.amount)) }
                            td.num { (credit.block) }
                        }
                    } }
                } }
            }
            @if !slashes.is_empty() {
                h3 #slashes { "Slashes" }
                div.table-wrap { table {
                    thead { tr { th scope="col" { "Node" } th scope="col" { "Reason" } th.num scope="col" { "Amount" } th scope="col" { "Transaction" } } }
                    tbody { @for event in &slashes {
                        @if let VerinferEvent::NodeSlashed { node, amount, reason, .. } = &event.event {
                            tr.slash {
                                td { (node_link(*node)) }
                                td { (reason.wire_name()) }
                                td.num { (tokens(state, *amount)) }
                                td { (short_hex(&event.tx_hash.to_string())) }
                            }
                        }
                    } }
                } }
            }
        }
    }
}

fn deadline(timestamp: u32) -> String {
    if timestamp == 0 {
        "its deadline".to_owned()
    } else {
        utc(u64::from(timestamp))
    }
}

fn nodes_section(page: &TaskPage) -> Markup {
    let task = &page.task;
    let selected: Vec<&TaskNodeRecord> = page
        .nodes
        .iter()
        .filter(|node| node.node != Address::ZERO)
        .collect();
    html! {
        section #nodes aria-labelledby="nodes-title" {
            h2 #nodes-title { "Selected nodes" }
            @if selected.is_empty() {
                p.muted { "No nodes drawn yet." }
            } @else {
                div.nodes-grid {
                    @for node in &selected {
                        @let record = page.records.get(&node.node);
                        div.card.node {
                            div.label { (slot_label(node.slot, task.chain.mode)) }
                            div.value { (node_link(node.node)) }
                            div {
                                @match record {
                                    Some(record) => { (record.gpu_model_name) ", " (super::gib(record.vram_mib)) " VRAM" }
                                    None => span.muted { "not in the node registry" }
                                }
                            }
                            div.muted {
                                @if node.commitment.is_some() { "committed" } @else { "not committed" }
                                " · "
                                @if node.invalid_args { "reported invalid args" }
                                @else if node.phashes.is_some() || node.text_digest.is_some() { "revealed" }
                                @else { "not revealed" }
                                " · "
                                @if page.results.contains_key(&node.node) { "result uploaded" } @else { "no upload" }
                            }
                            @if let Some(settlement) = &task.settlement {
                                div {
                                    @if settlement.agreed(usize::from(node.slot)) {
                                        span.status.good { "paid" }
                                    } @else if slashed(page, node.node) {
                                        span.status.bad { "slashed" }
                                    } @else {
                                        span.status.neutral { "not paid" }
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

fn slashed(page: &TaskPage, address: Address) -> bool {
    page.events.iter().any(
        |event| matches!(event.event, VerinferEvent::NodeSlashed { node, .. } if node == address),
    )
}

fn node_model(page: &TaskPage, address: Address) -> String {
    page.records
        .get(&address)
        .map_or_else(|| "unknown GPU".to_owned(), |r| r.gpu_model_name.clone())
}

fn images_section(page: &TaskPage) -> Markup {
    let task = &page.task;
    let count = usize::from(task.chain.image_count);
    let revealed: Vec<&TaskNodeRecord> = page
        .nodes
        .iter()
        .filter(|node| node.node != Address::ZERO)
        .collect();
    html! {
        section #images aria-labelledby="images-title" {
            h2 #images-title { "Images" }
            p.note {
                "Each node's image as verified by the relayer against its on-chain reveal, with its pHash as an 8×8 grid of bits (set bits dark; the first hex digit is the top-left row)."
            }
            div.images {
                @for image in 0..count {
                    div.image-row {
                        h3 { "Image " (image + 1) " of " (count) }
                        @for node in &revealed {
                            @let label = format!("Image {} by {} ({}, {})", image + 1, slot_label(node.slot, task.chain.mode), node.node, node_model(page, node.node));
                            @let uploaded = page.results.get(&node.node).and_then(|result| result.items.get(image));
                            @let phash = node.phashes.as_ref().and_then(|phashes| phashes.get(image)).copied();
                            figure.result {
                                @match uploaded {
                                    Some(item) => img.result-image src={ "/v1/blobs/" (item.blob) } alt=(label) loading="lazy" width="256" height="256";
                                    None => div.missing role="img" aria-label={ (label) ": not uploaded" } {
                                        @if phash.is_some() { "Revealed, not uploaded" } @else { "No result" }
                                    }
                                }
                                figcaption {
                                    (slot_label(node.slot, task.chain.mode)) " · " (node_model(page, node.node))
                                    @if let Some(phash) = phash {
                                        br; code { (format!("{phash:016x}")) }
                                        div.grids { (grid::phash_grid(phash, &label)) }
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

/// The pHash node `slot` revealed for `image`, if it did.
fn revealed_phash(page: &TaskPage, slot: usize, image: usize) -> Option<u64> {
    page.nodes
        .iter()
        .find(|node| usize::from(node.slot) == slot && node.node != Address::ZERO)
        .and_then(|node| node.phashes.as_ref())
        .and_then(|phashes| phashes.get(image))
        .copied()
}

fn distances_section(page: &TaskPage) -> Markup {
    let task = &page.task;
    let count = usize::from(task.chain.image_count);
    let slot_phash = |slot: usize, image: usize| revealed_phash(page, slot, image);
    let any_pair = (0..count).any(|image| {
        SLOT_PAIRS
            .iter()
            .any(|(a, b)| slot_phash(*a, image).is_some() && slot_phash(*b, image).is_some())
    });
    html! {
        section #distances aria-labelledby="distances-title" {
            h2 #distances-title { "Distances" }
            @if !any_pair {
                p.muted {
                    @if task.settlement.as_ref().is_some_and(|s| !s.compared()) {
                        "Nothing was compared: the task was accepted unchecked."
                    } @else {
                        "No two nodes have revealed yet."
                    }
                }
            } @else {
                p.note {
                    "Per pair of nodes, the bits in which their pHashes differ (marked red) and the Hamming distance against the threshold"
                    @if let Some(threshold) = page.threshold { " of " (threshold) " bits" }
                    ": within it the images count as the same."
                }
                @for image in 0..count {
                    h3 { "Image " (image + 1) }
                    div.pairs {
                        @for (a, b) in &SLOT_PAIRS {
                            @if let (Some(pa), Some(pb)) = (slot_phash(*a, image), slot_phash(*b, image)) {
                                // The settlement's distance once settled; from the reveals before.
                                @let settled = task.settlement.as_ref().and_then(|s| s.pair_distances(*a, *b).get(image).copied()).filter(|d| *d != NO_RESULT);
                                @let distance = settled.map_or((pa ^ pb).count_ones(), u32::from);
                                @let over = page.threshold.is_some_and(|t| distance > u32::from(t));
                                @let names = format!("{} vs {}", slot_label(*a as u8, task.chain.mode), slot_label(*b as u8, task.chain.mode));
                                div.pair.over[over] data-distance=(distance) data-threshold=[page.threshold] {
                                    (grid::diff_grid(pa, pb, &format!("Image {}, {names}", image + 1)))
                                    div {
                                        div { (names) }
                                        strong {
                                            "d = " (distance)
                                            @if let Some(threshold) = page.threshold {
                                                @if over { " > " } @else { " ≤ " } (threshold)
                                            }
                                        }
                                        div.muted { @if over { "different" } @else { "same" } }
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

fn text_section(page: &TaskPage) -> Markup {
    let task = &page.task;
    html! {
        section #output aria-labelledby="output-title" {
            h2 #output-title { "Output" }
            @match &page.text {
                Some((blob, Ok(output))) => {
                    @let shown = truncate(&output.text, MAX_TEXT_SHOWN);
                    pre.textout { (shown) }
                    p.note {
                        (output.token_ids.len()) " tokens, finish reason " (format!("{:?}", output.finish_reason).to_lowercase()) ". "
                        @if shown.len() < output.text.len() { "Cut at " (MAX_TEXT_SHOWN) " bytes. " }
                        a href={ "/v1/blobs/" (blob) } { "Whole output (JSON)" }
                    }
                }
                Some((_, Err(error))) => p.error { (error) }
                None => p.muted {
                    @if task.settlement.is_some() { "No agreeing node has uploaded its output." }
                    @else { "Shown once the task is validated and an agreeing node uploads it." }
                }
            }
        }
        section #distances aria-labelledby="digests-title" {
            h2 #digests-title { "Digests" }
            p.note { "Text must match exactly: the nodes' digests of the output must be equal." }
            div.table-wrap { table {
                thead { tr { th scope="col" { "Node" } th scope="col" { "GPU model" } th scope="col" { "Digest" } } }
                tbody {
                    @for node in page.nodes.iter().filter(|node| node.node != Address::ZERO) {
                        tr {
                            td { (slot_label(node.slot, task.chain.mode)) " " (node_link(node.node)) }
                            td { (node_model(page, node.node)) }
                            td {
                                @match node.text_digest {
                                    Some(digest) => code { (digest) },
                                    None => span.muted { "not revealed" },
                                }
                            }
                        }
                    }
                }
            } }
            div.pairs {
                @for (a, b) in &SLOT_PAIRS {
                    @let digest = |slot: usize| page.nodes.iter().find(|n| usize::from(n.slot) == slot && n.node != Address::ZERO).and_then(|n| n.text_digest);
                    @if let (Some(da), Some(db)) = (digest(*a), digest(*b)) {
                        @let distance = u32::from(da != db);
                        div.pair.over[distance > 0] data-distance=(distance) data-threshold="0" {
                            (slot_label(*a as u8, task.chain.mode)) " vs " (slot_label(*b as u8, task.chain.mode)) ": "
                            strong { @if distance == 0 { "equal" } @else { "different" } }
                        }
                    }
                }
            }
        }
    }
}

fn truncate(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn timeline(state: &AppState, page: &TaskPage) -> Markup {
    let mode = page.task.chain.mode;
    let slot_of = |address: Address| {
        page.nodes
            .iter()
            .find(|node| node.node == address)
            .map(|node| slot_label(node.slot, mode))
    };
    html! {
        section #timeline aria-labelledby="timeline-title" {
            h2 #timeline-title { "Timeline" }
            @if page.events.is_empty() {
                p.muted { "No events indexed." }
            } @else {
                ol.timeline {
                    @for event in &page.events {
                        @let (text, class) = describe(state, &event.event, &slot_of);
                        li.(class) {
                            (text)
                            div.muted {
                                "block " (event.block) " · tx " (short_hex(&event.tx_hash.to_string()))
                                @if let Some(timestamp) = event.timestamp { " · " (utc(timestamp)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A timeline entry's text and its dot's class.
fn describe(
    state: &AppState,
    event: &VerinferEvent,
    slot_of: &dyn Fn(Address) -> Option<String>,
) -> (Markup, &'static str) {
    use VerinferEvent as E;
    let who = |node: &Address| -> Markup {
        html! {
            @if let Some(slot) = slot_of(*node) { (slot) " " }
            (node_link(*node))
        }
    };
    match event {
        E::TaskCreated { mode, fee, .. } => (
            html! { "Created (" (mode.wire_name()) " validation, fee " (tokens(state, *fee)) ")" },
            "",
        ),
        E::TaskQueued { .. } => (html! { "Queued for nodes" }, ""),
        E::TaskStarted { seed_block, .. } => (
            html! { "Started: nodes drawn with the hash of block " (seed_block) },
            "",
        ),
        E::SampleCommitted { sample_block, .. } => (
            html! { "First node committed; block " (sample_block) "'s hash decides the check" },
            "",
        ),
        E::SampleDecided { checked, .. } => (
            html! { @if *checked { "Sample draw: checked by two more nodes" } @else { "Sample draw: not checked" } },
            "",
        ),
        E::CheckStarted { seed_block, .. } => (
            html! { "Checkers drawn with the hash of block " (seed_block) },
            "",
        ),
        E::ResultCommitted { node, .. } => (html! { (who(node)) " committed" }, ""),
        E::RevealPhaseOpened { .. } => (html! { "All committed: reveal phase opened" }, ""),
        E::ImageResultRevealed { node, .. } | E::TextResultRevealed { node, .. } => {
            (html! { (who(node)) " revealed" }, "")
        }
        E::InvalidArgsReported { node, .. } => {
            (html! { (who(node)) " reported invalid args" }, "bad")
        }
        E::TaskSettled { outcome, .. } => (
            html! { "Settled: " (outcome.wire_name()) },
            if *outcome == TaskStatus::Validated {
                "good"
            } else {
                "bad"
            },
        ),
        E::NodeRewarded { node, amount, .. } => (
            html! { (who(node)) " paid " (tokens(state, *amount)) },
            "good",
        ),
        E::NodeSlashed {
            node,
            amount,
            reason,
            ..
        } => (
            html! { (who(node)) " slashed " (tokens(state, *amount)) ": " (reason.wire_name()) },
            "bad",
        ),
        E::NodeKicked { node, .. } => (html! { (who(node)) " kicked" }, "bad"),
        E::NodeLeaving { node, .. } => (html! { (who(node)) " leaves after this task" }, ""),
        E::BalanceCredited {
            account,
            reason,
            amount,
            ..
        } => (
            html! { (node_link(*account)) " credited " (tokens(state, *amount)) " (" (reason.wire_name()) ")" },
            "",
        ),
        E::TaskCancelled { .. } => (html! { "Cancelled by its creator" }, "bad"),
        E::TaskExpired { .. } => (html! { "Expired" }, "bad"),
        other => (html! { (other.name()) }, ""),
    }
}
