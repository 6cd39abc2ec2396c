//! Fetching a validated task's result from the relayer, verified against the chain.
//!
//! The relayer is not trusted: every PNG is re-hashed (keccak256 against the URL it was served
//! under, pHash against what the node revealed on chain) and every text output re-digested before
//! a file is written. Only nodes the chain's settlement counts as agreeing are considered.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use alloy::primitives::{Address, B256, keccak256};
use verinfer_abi::{TaskKind, TaskStatus};
use verinfer_task::TextOutput;
use verinfer_wire::{ErrorCode, types::NodeResultView};

use crate::{
    Client,
    error::ClientError,
    report::{RevealedResult, TaskReport},
};

/// What was checked of the result that was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifiedResult {
    /// Images whose recomputed pHashes equal the node's on-chain reveal, in image order.
    Images {
        /// The recomputed (= revealed) pHashes.
        phashes: Vec<u64>,
        /// keccak256 of each PNG.
        keccak256: Vec<B256>,
    },
    /// A text output whose recomputed digest equals the node's on-chain reveal.
    Text {
        /// The recomputed (= revealed) digest.
        digest: B256,
        /// The output.
        output: TextOutput,
    },
}

/// The outcome of [`Client::fetch_result`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultReport {
    /// The task.
    pub task_id: u64,
    /// The node whose upload was verified and written.
    pub node: Address,
    /// Its slot in the task.
    pub slot: u8,
    /// What was verified.
    pub verified: VerifiedResult,
    /// The files written, in order (images in image order; `output.json` and `output.txt` for text).
    pub files: Vec<PathBuf>,
    /// Agreeing nodes whose upload was not used, and why (failed verification, or not uploaded).
    pub skipped: Vec<(Address, String)>,
    /// The chain's record of the task (settlement, nodes, payouts).
    pub report: TaskReport,
}

impl ResultReport {
    /// One line saying what was verified.
    pub fn summary(&self) -> String {
        match &self.verified {
            VerifiedResult::Images { phashes, .. } => format!(
                "verified {} image(s) of task {} against node {}'s on-chain pHashes (recomputed: {})",
                phashes.len(),
                self.task_id,
                self.node,
                phashes
                    .iter()
                    .map(|p| format!("{p:016x}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            VerifiedResult::Text { digest, .. } => format!(
                "verified the text output of task {} against node {}'s on-chain digest {digest}",
                self.task_id, self.node
            ),
        }
    }
}

/// A verified upload and the bytes to write.
struct Verified {
    result: VerifiedResult,
    /// The PNGs, in image order (image tasks).
    pngs: Vec<bytes::Bytes>,
}

/// A validated task's result downloaded from the relayer and verified against the chain, held in
/// memory: [`Client::fetch_verified`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedResult {
    /// The task.
    pub task_id: u64,
    /// The node whose upload was verified.
    pub node: Address,
    /// Its slot in the task.
    pub slot: u8,
    /// What was verified.
    pub verified: VerifiedResult,
    /// Image tasks: the verified PNGs in image order (empty for text).
    pub images: Vec<bytes::Bytes>,
    /// Agreeing nodes whose upload was not used, and why (failed verification, or not uploaded).
    pub skipped: Vec<(Address, String)>,
    /// The chain's record of the task (settlement, nodes, payouts).
    pub report: TaskReport,
}

impl Client {
    /// Downloads a validated task's result from the relayer, checks it against the digests the
    /// agreeing nodes revealed on chain (pHash of every PNG, or the text digest), and only then
    /// writes it to `out_dir` (`image-<i>.png`, or `output.json` + `output.txt`).
    ///
    /// Nodes upload once the task is settled and the relayer indexes the settlement a poll after
    /// the chain, so right after [`wait`](Self::wait) this can fail with
    /// [`ClientError::ResultsNotReady`] or the relayer's 404/409: use
    /// [`fetch_result_when_ready`](Self::fetch_result_when_ready) to wait that out.
    pub async fn fetch_result(
        &self,
        task_id: u64,
        out_dir: &Path,
    ) -> Result<ResultReport, ClientError> {
        let fetched = self.fetch_verified(task_id).await?;
        let files = write_result(out_dir, &fetched).await?;
        Ok(ResultReport {
            task_id,
            node: fetched.node,
            slot: fetched.slot,
            verified: fetched.verified,
            files,
            skipped: fetched.skipped,
            report: fetched.report,
        })
    }

    /// Like [`fetch_result`](Self::fetch_result), without writing anything: the verified PNGs
    /// (or text output) are returned in memory.
    pub async fn fetch_verified(&self, task_id: u64) -> Result<FetchedResult, ClientError> {
        let report = self.task_report(task_id).await?;
        if report.task.status != TaskStatus::Validated {
            return Err(ClientError::NotValidated {
                task_id,
                status: report.task.status,
            });
        }
        let results = self.relayer().results(task_id, false).await?;
        let mut skipped = Vec::new();
        let mut verified = None;
        for upload in &results.results {
            match self.verify_upload(&report, upload).await {
                Ok(result) => {
                    verified = Some((upload.node, result));
                    break;
                }
                Err(reason) => {
                    tracing::warn!(task_id, node = %upload.node, %reason, "relayer upload failed verification");
                    skipped.push((upload.node, reason));
                }
            }
        }
        let Some((node, verified)) = verified else {
            if skipped.is_empty() {
                // The relayer's latest event of a validated task is its settlement.
                let settled_block = self
                    .relayer()
                    .task(task_id)
                    .await
                    .ok()
                    .map(|view| view.updated_block);
                return Err(ClientError::ResultsNotReady {
                    task_id,
                    pending: results.pending_nodes,
                    settled_block,
                });
            }
            let reasons = skipped
                .iter()
                .map(|(node, why)| format!("{node}: {why}"))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(ClientError::Unverified { task_id, reasons });
        };
        for pending in &results.pending_nodes {
            skipped.push((
                *pending,
                "has not uploaded its result to the relayer".to_owned(),
            ));
        }
        let slot = report
            .task
            .nodes
            .iter()
            .position(|&n| n == node)
            .unwrap_or_default() as u8;
        Ok(FetchedResult {
            task_id,
            node,
            slot,
            verified: verified.result,
            images: verified.pngs,
            skipped,
            report,
        })
    }

    /// Checks one node's upload against the chain; the error says what does not match.
    async fn verify_upload(
        &self,
        report: &TaskReport,
        upload: &NodeResultView,
    ) -> Result<Verified, String> {
        let node = report
            .nodes
            .iter()
            .find(|node| node.address == upload.node)
            .ok_or_else(|| "the node was not selected for this task".to_owned())?;
        if node.agreed != Some(true) {
            return Err("the chain does not count this node as agreeing".to_owned());
        }
        match (report.task.kind, &node.revealed) {
            (TaskKind::Image, Some(RevealedResult::Images(revealed))) => {
                let images = upload.images.as_ref().ok_or("the upload has no images")?;
                if images.len() != revealed.len() {
                    return Err(verinfer_task::ResultMismatch::ImageCount {
                        revealed: revealed.len(),
                        uploaded: images.len(),
                    }
                    .to_string());
                }
                let mut pngs = Vec::with_capacity(images.len());
                let mut hashes = Vec::with_capacity(images.len());
                for (index, (image, &on_chain)) in images.iter().zip(revealed).enumerate() {
                    let png = self
                        .relayer()
                        .blob(image.keccak256)
                        .await
                        .map_err(|e| format!("image {index}: {e}"))?;
                    let hash = keccak256(&png);
                    if hash != image.keccak256 {
                        return Err(format!(
                            "image {index} hashes to {hash}, not {}",
                            image.keccak256
                        ));
                    }
                    verinfer_task::verify_image(index, &png, on_chain)
                        .map_err(|error| error.to_string())?;
                    hashes.push(hash);
                    pngs.push(png);
                }
                Ok(Verified {
                    result: VerifiedResult::Images {
                        phashes: revealed.clone(),
                        keccak256: hashes,
                    },
                    pngs,
                })
            }
            (TaskKind::Text, Some(RevealedResult::Text(on_chain))) => {
                let output = upload
                    .output
                    .as_ref()
                    .ok_or("the upload has no text output")?;
                let digest = verinfer_task::verify_text(output, *on_chain)
                    .map_err(|error| error.to_string())?;
                Ok(Verified {
                    result: VerifiedResult::Text {
                        digest,
                        output: output.clone(),
                    },
                    pngs: Vec::new(),
                })
            }
            (_, None) => Err("the node revealed nothing on chain".to_owned()),
            (_, Some(other)) => Err(format!(
                "the node revealed {other:?} on chain, not a result of this kind"
            )),
        }
    }
}

/// Writes a verified result into `out_dir` (created when missing).
async fn write_result(
    out_dir: &Path,
    verified: &FetchedResult,
) -> Result<Vec<PathBuf>, ClientError> {
    let write_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ClientError::Write { path, source }
    };
    tokio::fs::create_dir_all(out_dir)
        .await
        .map_err(write_error(out_dir))?;
    let mut files = Vec::new();
    match &verified.verified {
        VerifiedResult::Images { .. } => {
            for (index, png) in verified.images.iter().enumerate() {
                let path = out_dir.join(format!("image-{index}.png"));
                tokio::fs::write(&path, png)
                    .await
                    .map_err(write_error(&path))?;
                files.push(path);
            }
        }
        VerifiedResult::Text { output, .. } => {
            let json_path = out_dir.join("output.json");
            let mut json =
                serde_json::to_vec_pretty(output).map_err(|error| ClientError::Write {
                    path: json_path.clone(),
                    source: std::io::Error::other(error),
                })?;
            json.push(b'\n');
            tokio::fs::write(&json_path, json)
                .await
                .map_err(write_error(&json_path))?;
            files.push(json_path);
            let text_path = out_dir.join("output.txt");
            tokio::fs::write(&text_path, output.text.as_bytes())
                .await
                .map_err(write_error(&text_path))?;
            files.push(text_path);
        }
    }
    Ok(files)
}

impl Client {
    /// [`fetch_result`](Self::fetch_result), retried every 250 ms for up to `timeout` while the
    /// result is not there yet (no upload from an agreeing node, or the relayer has not indexed
    /// the settlement); any other error, or the last one at the deadline, is returned.
    pub async fn fetch_result_when_ready(
        &self,
        task_id: u64,
        out_dir: &Path,
        timeout: Duration,
    ) -> Result<ResultReport, ClientError> {
        retry_until_ready(task_id, timeout, || self.fetch_result(task_id, out_dir)).await
    }

    /// [`fetch_verified`](Self::fetch_verified), retried as
    /// [`fetch_result_when_ready`](Self::fetch_result_when_ready) retries.
    pub async fn fetch_verified_when_ready(
        &self,
        task_id: u64,
        timeout: Duration,
    ) -> Result<FetchedResult, ClientError> {
        retry_until_ready(task_id, timeout, || self.fetch_verified(task_id)).await
    }
}

/// Runs `fetch` every 250 ms for up to `timeout` while it fails with [`not_ready_yet`].
async fn retry_until_ready<T, F, Fut>(
    task_id: u64,
    timeout: Duration,
    mut fetch: F,
) -> Result<T, ClientError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ClientError>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match fetch().await {
            Err(error) if not_ready_yet(&error) && tokio::time::Instant::now() < deadline => {
                tracing::debug!(task_id, %error, "result not ready yet");
            }
            result => return result,
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Whether `error` only says the result has not reached the relayer yet.
fn not_ready_yet(error: &ClientError) -> bool {
    match error {
        ClientError::ResultsNotReady { .. } => true,
        ClientError::Relayer(error) => matches!(
            error.code(),
            Some(ErrorCode::TaskNotValidated | ErrorCode::UnknownTask)
        ),
        _ => false,
    }
}
