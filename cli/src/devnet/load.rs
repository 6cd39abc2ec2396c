//! `verinfer devnet --load-tasks N`: a throughput benchmark on the devnet.
//!
//! After the demo, creates N one-image tasks back to back (distinct seeds, so no two share args),
//! lets the fleet work through them (three nodes per task; tasks beyond what the free nodes can
//! take wait in the contract's queue) and reports how many validated per minute, and how many
//! result uploads per second the relayer verified over the same span. The relayer's own ceiling
//! for verified uploads is measured apart by `cargo bench -p verinfer-relayer --bench upload`:
//! here uploads are limited by how fast the nodes compute.

use std::time::{Duration, Instant};

use alloy::primitives::U256;
use eyre::{WrapErr, bail, eyre};
use futures_util::{StreamExt as _, stream::FuturesUnordered};
use verinfer_abi::TaskStatus;
use verinfer_client::Client;
use verinfer_task::{ImageArgs, ModelRef};

/// Fee of one load task, in token base units (1 token).
pub(crate) const LOAD_FEE: u128 = 1_000_000_000_000_000_000;

/// What one load run measured.
#[derive(Debug)]
pub(crate) struct LoadReport {
    pub(crate) tasks: u32,
    pub(crate) validated: u32,
    pub(crate) other: Vec<(u64, TaskStatus)>,
    pub(crate) nodes: usize,
    pub(crate) elapsed: Duration,
    pub(crate) verified_uploads: u64,
}

impl LoadReport {
    pub(crate) fn tasks_per_minute(&self) -> f64 {
        f64::from(self.validated) * 60.0 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    pub(crate) fn uploads_per_second(&self) -> f64 {
        self.verified_uploads as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    pub(crate) fn render(&self) -> String {
        let mut out = format!(
            "load: {} image tasks (1 image, 64x64, 4 steps) on {} nodes: {} validated in {:.1} s = {:.1} tasks validated per minute; \
             relayer verified {} result uploads = {:.2} uploads/s (bounded by the nodes' compute; its ceiling: cargo bench -p verinfer-relayer --bench upload)",
            self.tasks,
            self.nodes,
            self.validated,
            self.elapsed.as_secs_f64(),
            self.tasks_per_minute(),
            self.verified_uploads,
            self.uploads_per_second(),
        );
        for (task_id, status) in &self.other {
            out.push_str(&format!("\nload: task {task_id} ended {status}"));
        }
        out
    }
}

/// The args of load task `index`: the demo's image settings, one image, its own seed.
fn load_args(model: &ModelRef, index: u32) -> ImageArgs {
    super::tiny_image_args(
        model,
        &format!("load test image {index}"),
        1,
        1_000 + u64::from(index),
    )
}

/// Creates `tasks` image tasks, waits for all of them to settle (at most `timeout`) and measures.
pub(crate) async fn run(
    client: &Client,
    relayer: &verinfer_wire::RelayerClient,
    model: &ModelRef,
    tasks: u32,
    nodes: usize,
    min_vram_mib: u32,
    timeout: Duration,
) -> eyre::Result<LoadReport> {
    // One approval for every fee, so that each task is a single createTask transaction.
    let token =
        verinfer_abi::MockStakingToken::new(client.deployment().staking_token, client.provider());
    let total_fees = U256::from(LOAD_FEE) * U256::from(tasks);
    let receipt = token
        .approve(client.deployment().verinfer, total_fees)
        .send()
        .await
        .wrap_err("approving the load tasks' fees")?
        .get_receipt()
        .await
        .wrap_err("approving the load tasks' fees")?;
    if !receipt.status() {
        bail!(
            "approving the load tasks' fees reverted (tx {})",
            receipt.transaction_hash
        );
    }

    let started = Instant::now();
    let mut ids = Vec::with_capacity(tasks as usize);
    for index in 0..tasks {
        let created = client
            .create_image_task(load_args(model, index), Some(LOAD_FEE), min_vram_mib)
            .await
            .wrap_err_with(|| format!("creating load task {index}"))?;
        ids.push(created.task_id);
    }
    println!(
        "load: {tasks} image tasks created in {:.1} s (ids {}..={})",
        started.elapsed().as_secs_f64(),
        ids.first().copied().unwrap_or_default(),
        ids.last().copied().unwrap_or_default()
    );

    let mut waiting: FuturesUnordered<_> = ids
        .iter()
        .map(|&task_id| async move { (task_id, client.wait(task_id, |_| {}).await) })
        .collect();
    let mut validated = 0;
    let mut other = Vec::new();
    let mut settled = 0;
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = waiting.next() => {
                let Some((task_id, task)) = next else { break };
                let task = task.wrap_err_with(|| format!("following load task {task_id}"))?;
                settled += 1;
                if task.status == TaskStatus::Validated {
                    validated += 1;
                } else {
                    other.push((task_id, task.status));
                }
                if settled % 10 == 0 || settled == tasks {
                    println!("load: {settled}/{tasks} settled after {:.1} s", started.elapsed().as_secs_f64());
                }
            }
            () = &mut deadline => {
                return Err(eyre!("only {settled} of {tasks} load tasks settled within {timeout:?}"));
            }
        }
    }
    let elapsed = started.elapsed();
    // Nodes upload after settlement; give the last uploads a moment to land before counting
    // them, task by task (the demo's late uploads must not count).
    let expected = u64::from(validated) * 3;
    let upload_deadline = Instant::now() + Duration::from_secs(10);
    let mut uploads = uploaded(relayer, &ids).await?;
    while uploads < expected && Instant::now() < upload_deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        uploads = uploaded(relayer, &ids).await?;
    }
    Ok(LoadReport {
        tasks,
        validated,
        other,
        nodes,
        elapsed,
        verified_uploads: uploads,
    })
}

/// Verified uploads the relayer holds for `tasks` (one per node whose result it accepted).
async fn uploaded(relayer: &verinfer_wire::RelayerClient, tasks: &[u64]) -> eyre::Result<u64> {
    let mut total = 0;
    for &task_id in tasks {
        let view = relayer
            .task(task_id)
            .await
            .wrap_err_with(|| format!("reading load task {task_id} from the relayer"))?;
        total += view.nodes.iter().filter(|node| node.uploaded).count() as u64;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_tasks_have_distinct_args() {
        let model = ModelRef {
            name: "tiny-sd".into(),
            digest: format!("0x{}", "11".repeat(32)),
        };
        let a = verinfer_task::TaskArgs::Image(load_args(&model, 0));
        let b = verinfer_task::TaskArgs::Image(load_args(&model, 1));
        assert_ne!(a.to_canonical_bytes(), b.to_canonical_bytes());
    }
}
