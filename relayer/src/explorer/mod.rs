//! The explorer: server-rendered HTML pages over what the relayer indexes, under `/explorer`.
//!
//! | route | shows |
//! | --- | --- |
//! | `GET /explorer` | the deployment's parameters, tasks by status, nodes by GPU model, latest tasks (`?before=ID` pages back), latest slashes, search |
//! | `GET /explorer/tasks/{id}` | timeline, selected nodes, images side by side with their pHash grids and per-pair differing bits against the threshold (text: output and digests), verdict, payouts, slashes |
//! | `GET /explorer/nodes/{address}` | GPU model and VRAM, stake over time, tasks (`?before=ID`), agreement rate, slashes |
//! | `GET /explorer/calibration` | pairwise pHash distances of validated image tasks by GPU-model pair and precision, against the threshold |
//! | `GET /explorer/search?q=` | a task id or an address: redirects to its page |
//!
//! Nothing is fetched from the internet: the style sheet and the live-update script are served
//! by the relayer itself (`/explorer/assets/…`). A page of a task that is not final reloads its
//! content every few seconds (the script swaps `<main>` for the fresh one and stops once final).

mod calibration;
mod grid;
mod nodes;
mod overview;
mod queries;
mod tasks;

use axum::{
    Router,
    extract::{Query, State},
    http::{HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
    routing::get,
};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;

use crate::{api::AppState, store::StoreError};

pub use queries::{AgreementStats, ExplorerQueries, NodeTaskRow, SlashRow, TimelineEvent};

/// The explorer's style sheet (no external fonts or frameworks).
const STYLE: &str = include_str!("style.css");
/// Live updates of pages whose `<main data-live>` is set.
const LIVE_SCRIPT: &str = include_str!("live.js");

/// Rows per page of a paginated table.
pub const PAGE_ROWS: u64 = 25;

/// The explorer's routes (merged into the API router).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/explorer") }))
        .route("/explorer", get(overview::page))
        .route("/explorer/", get(|| async { Redirect::to("/explorer") }))
        .route("/explorer/tasks/{id}", get(tasks::page))
        .route("/explorer/nodes/{address}", get(nodes::page))
        .route("/explorer/calibration", get(calibration::page))
        .route("/explorer/search", get(search))
        .route("/explorer/assets/style.css", get(style))
        .route("/explorer/assets/live.js", get(live_script))
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

async fn live_script() -> Response {
    asset("text/javascript; charset=utf-8", LIVE_SCRIPT)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        body,
    )
        .into_response()
}

/// Why a page could not be shown: rendered as an HTML page with the status.
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    message: String,
}

impl PageError {
    /// A 404 page saying what was not found.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }

    /// A 400 page saying what is wrong with the request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

impl From<StoreError> for PageError {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "explorer page failed");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: format!("the relayer's database failed: {error}"),
        }
    }
}

impl From<crate::blobs::BlobError> for PageError {
    fn from(error: crate::blobs::BlobError) -> Self {
        tracing::error!(%error, "explorer page failed");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: format!("the relayer's blob store failed: {error}"),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("error");
        let body = layout(
            title,
            false,
            html! {
                h1 { (title) }
                p.error role="alert" { (self.message) }
                p { a href="/explorer" { "Back to the overview" } }
            },
        );
        (self.status, body).into_response()
    }
}

/// A page: the document around `content` (`live`: the page reloads its `<main>` until the
/// server stops marking it live).
pub fn layout(title: &str, live: bool, content: Markup) -> Html<String> {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · verinfer explorer" }
                link rel="stylesheet" href="/explorer/assets/style.css";
                script src="/explorer/assets/live.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.site {
                    nav aria-label="Explorer" {
                        a.brand href="/explorer" { "verinfer explorer" }
                        a href="/explorer/calibration" { "Calibration" }
                        a href="/v1/params" { "API" }
                    }
                    (search_form())
                }
                main #main data-live=[live.then_some("1")] tabindex="-1" {
                    (content)
                }
            }
        }
    };
    Html(markup.into_string())
}

/// The search box: a task id or an address.
pub fn search_form() -> Markup {
    html! {
        form.search #search role="search" action="/explorer/search" method="get" {
            label for="q" { "Task id or address" }
            input #q type="search" name="q" placeholder="task id or 0x… address" required
                autocomplete="off" spellcheck="false";
            button type="submit" { "Search" }
        }
    }
}

/// `?before=ID`: the page of rows with ids below ID.
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    /// Show rows with ids below this one.
    pub before: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
}

async fn search(
    State(state): State<AppState>,
    query: Result<Query<SearchQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Redirect, PageError> {
    let Query(query) = query.map_err(|rejection| PageError::bad_request(rejection.body_text()))?;
    let text = query.q.trim();
    if text.is_empty() {
        return Err(PageError::bad_request(
            "type a task id or an address to search for",
        ));
    }
    if let Ok(task_id) = text.trim_start_matches('#').parse::<u64>() {
        if task_id == 0 || state.inner().store.task(task_id).await?.is_none() {
            return Err(PageError::not_found(format!(
                "no task {task_id} is indexed"
            )));
        }
        return Ok(Redirect::to(&format!("/explorer/tasks/{task_id}")));
    }
    if let Ok(address) = text.parse::<alloy_primitives::Address>() {
        return Ok(Redirect::to(&format!("/explorer/nodes/{address}")));
    }
    Err(PageError::bad_request(format!(
        "{text:?} is neither a task id (a positive integer) nor an address (0x and 40 hex digits)"
    )))
}

/// A short form of a hash or address for tables (`0x1234…abcd`); the full one in `title`.
pub fn short_hex(full: &str) -> Markup {
    let short = if full.len() > 14 {
        format!("{}…{}", &full[..8], &full[full.len() - 4..])
    } else {
        full.to_owned()
    };
    html! { code title=(full) { (short) } }
}

/// A link to a node's page, the address shortened.
pub fn node_link(address: alloy_primitives::Address) -> Markup {
    let full = address.to_string();
    html! { a href={ "/explorer/nodes/" (full) } { (short_hex(&full)) } }
}

/// A link to a task's page.
pub fn task_link(task_id: u64) -> Markup {
    html! { a href={ "/explorer/tasks/" (task_id) } { "#" (task_id) } }
}

/// A token amount for a person: in tokens when the relayer knows the token's `decimals()`
/// (read from the chain at start), else in base units; the exact base units in `title`.
pub fn tokens(state: &AppState, amount: u128) -> Markup {
    match state.inner().token_decimals.get() {
        Some(decimals) => html! {
            span.amount title={ (amount) " base units" } { (decimals.format(amount)) }
        },
        None => html! { span.amount { (amount) " base units" } },
    }
}

/// A labelled value in a grid of cards.
pub fn card(label: &str, value: Markup) -> Markup {
    html! { div.card { div.label { (label) } div.value { (value) } } }
}

/// VRAM in GiB for a person: whole GiB, one decimal when not whole (81,559 MiB: 79.6 GiB).
pub fn gib(mib: u32) -> String {
    if mib.is_multiple_of(1024) {
        format!("{} GiB", mib / 1024)
    } else {
        format!("{:.1} GiB", f64::from(mib) / 1024.0)
    }
}

/// A decimal string of base units (as the API writes amounts) like [`tokens`].
pub fn decimal_tokens(state: &AppState, decimal: &str) -> Markup {
    match decimal.parse::<u128>() {
        Ok(units) => tokens(state, units),
        Err(_) => html! { (decimal) " base units" },
    }
}

/// A status badge, coloured by how the status reads (final good, final bad, open).
pub fn status_badge(status: verinfer_abi::TaskStatus) -> Markup {
    use verinfer_abi::TaskStatus as S;
    let class = match status {
        S::Validated => "good",
        S::Aborted | S::Errored | S::Expired => "bad",
        S::Cancelled | S::None => "neutral",
        _ => "open",
    };
    html! { span.status.(class) { (status.wire_name()) } }
}

/// A block time as UTC (`YYYY-MM-DD hh:mm:ss`).
pub fn utc(timestamp: u64) -> String {
    let days = timestamp / 86_400;
    let seconds = timestamp % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    )
}

/// Raw HTML that is known to be safe (constants only).
pub fn raw(text: &'static str) -> PreEscaped<&'static str> {
    PreEscaped(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_renders_block_times() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_709_164_800), "2024-02-29 00:00:00 UTC");
        assert_eq!(utc(1_796_000_123), "2026-11-30 00:55:23 UTC");
    }
}
