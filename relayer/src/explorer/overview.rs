//! Work in progress.
use super::PageError;
use axum::response::Html;
pub(super) async fn page() -> Result<Html<String>, PageError> {
    Err(PageError::not_found("not yet"))
}
