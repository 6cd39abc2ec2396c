//! `verinfer devnet --load-tasks N`: a throughput benchmark on the devnet.
//!
//! After the demo, creates N one-image tasks back to back (distinct seeds, so no two share args),
//! lets the fleet work through them (full mode: three nodes per task; `--sampled`: one node per
//! task, and two more for the fraction `p` the sample draw checks; tasks beyond what the free
//! nodes can take wait in the contract's queue) and reports how many settled per minute, and how
//! many result uploads per second the relayer verified over the same span. The relayer's own ceiling
//! for verified uploads is measured apart by `cargo bench -p verinfer-relayer --bench upload`:
//! here uploads are limited by how fast the nodes compute.

use std::time::{Duration, Instant};

use alloy::{primitives::U256, providers::Provider as _};
use eyre::{WrapErr, bail, eyre};
use futures_util::{StreamExt as _, stream::FuturesUnordered};
use verinfer_abi::{TaskKind, TaskStatus, ValidationMode};
use verinfer_client::{Client, TaskOptions};
use verinfer_task::{ImageArgs, ModelRef, TaskArgs};

/// How long without a task settling before the run checks whether the fleet is deadlocked.
const STALL_CHECK: Duration = Duration::from_secs(30);

/// Fee of one load task, in token base units (1 token of the devnet's mock token).
pub(crate) const LOAD_FEE: u128 = verinfer_devchain::TOKEN;

/// How the load tasks are validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoadMode {
    /// `createTask`: three nodes compute every task.
    Full,
    /// `createSampledTask`: one node computes, two more check it with probability `p`
    /// (`samplingBps`, in basis points, of the deployment's parameters in force).
    Sampled { sampling_bps: u16 },
}

/// What one load run measured.
#[derive(Debug)]
pub(crate) struct LoadReport {
    pub(crate) mode: LoadMode,
    pub(crate) tasks: u32,
    pub(crate) validated: u32,
    /// Sampled tasks the draw chose for a check (validated or not).
    pub(crate) checked: u32,
    pub(crate) other: Vec<(u64, TaskStatus)>,
    pub(crate) nodes: usize,
    pub(crate) elapsed: Duration,
    pub(crate) verified_uploads: u64,
    /// Transactions mined and reverted while the run lasted, whoever sent them (the goal is none:
    /// each one is gas a node or the creator paid for nothing).
    pub(crate) reverted: Vec<verinfer_devchain::RevertedTx>,
}

impl LoadReport {
    pub(crate) fn tasks_per_minute(&self) -> f64 {
        f64::from(self.validated) * 60.0 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    pub(crate) fn uploads_per_second(&self) -> f64 {
        self.verified_uploads as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    /// GPU runs the validated tasks took: three per full or checked task, one per unchecked one.
    pub(crate) fn compute_runs(&self) -> u32 {
        match self.mode {
            LoadMode::Full => 3 * self.validated,
            LoadMode::Sampled { .. } => {
                let unchecked = self.validated.saturating_sub(self.checked);
                3 * (self.validated - unchecked) + unchecked
            }
        }
    }

    pub(crate) fn render(&self) -> String {
        let (kind, validation) = match self.mode {
            LoadMode::Full => ("image tasks", String::new()),
            LoadMode::Sampled { sampling_bps } => (
                "sampled image tasks",
                format!(
                    " (sampled at p = {}: {} checked by three nodes, {} accepted unchecked; {} GPU runs instead of {})",
                    verinfer_abi::format_bps(sampling_bps),
                    self.checked.min(self.validated),
                    self.validated.saturating_sub(self.checked),
                    self.compute_runs(),
                    3 * self.validated,
                ),
            ),
        };
        // Every task settled validated, or the run fails: validated per minute is settled per
        // minute.
        let mut out = format!(
            "load: {} {kind} (1 image, 64x64, 4 steps) on {} nodes: {} validated in {:.1} s = {:.1} tasks validated per minute{validation}; \
             relayer verified {} result uploads = {:.2} uploads/s (bounded by the nodes' compute; its ceiling: cargo bench -p verinfer-relayer --bench upload); \
             {} reverted transactions",
            self.tasks,
            self.nodes,
            self.validated,
            self.elapsed.as_secs_f64(),
            self.tasks_per_minute(),
            self.verified_uploads,
            self.uploads_per_second(),
            self.reverted.len(),
        );
        for (task_id, status) in &self.other {
            out.push_str(&format!("\nload: task {task_id} ended {status}"));
        }
        for reverted in &self.reverted {
            out.push_str(&format!("\nload: reverted: {reverted}"));
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

/// Creates `tasks` image tasks in `mode`, waits for all of them to settle (at most `timeout`) and
/// measures.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run(
    client: &Client,
    relayer: &verinfer_wire::RelayerClient,
    model: &ModelRef,
    mode: LoadMode,
    tasks: u32,
    nodes: usize,
    min_vram_mib: u32,
    timeout: Duration,
) -> eyre::Result<LoadReport> {
    let fee = match mode {
        LoadMode::Full => LOAD_FEE,
        LoadMode::Sampled { .. } => {
            super::sampled_fee(client, TaskKind::Image, 1, LOAD_FEE).await?
        }
    };
    // One approval for every fee, so that each task is a single create transaction.
    let token =
        verinfer_abi::MockStakingToken::new(client.deployment().staking_token, client.provider());
    let total_fees = U256::from(fee) * U256::from(tasks);
    // Transactions of the run land after this block.
    let first_block = client
        .provider()
        .get_block_number()
        .await
        .wrap_err("reading the block number")?
        + 1;
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
        let options = TaskOptions::new()
            .with_fee(fee)
            .with_min_vram_mib(min_vram_mib)
            .with_mode(match mode {
                LoadMode::Full => ValidationMode::Full,
                LoadMode::Sampled { .. } => ValidationMode::Sampled,
            });
        let args = TaskArgs::Image(load_args(model, index));
        // A create that lands first in its block pays the block's draw: the client's gas limit
        // carries the worst-case draw (`verinfer_abi::DRAW_HEADROOM`), so none is resent here.
        let created = client
            .create(&args, &options)
            .await
            .wrap_err_with(|| format!("creating load task {index}"))?;
        ids.push(created.task_id);
    }
    let kind = match mode {
        LoadMode::Full => "image tasks",
        LoadMode::Sampled { .. } => "sampled image tasks",
    };
    println!(
        "load: {tasks} {kind} created in {:.1} s (ids {}..={}, fee {} tokens each)",
        started.elapsed().as_secs_f64(),
        ids.first().copied().unwrap_or_default(),
        ids.last().copied().unwrap_or_default(),
        client.token_decimals().await?.format(fee),
    );

    let mut waiting: FuturesUnordered<_> = ids
        .iter()
        .map(|&task_id| async move { (task_id, client.wait(task_id, |_| {}).await) })
        .collect();
    let mut validated = 0;
    let mut checked = 0;
    let mut expected_uploads = 0;
    let mut other = Vec::new();
    let mut settled = 0;
    let mut unsettled: std::collections::BTreeSet<u64> = ids.iter().copied().collect();
    let mut last_settled = Instant::now();
    let mut stall_check = tokio::time::interval(STALL_CHECK);
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = waiting.next() => {
                let Some((task_id, task)) = next else { break };
                let task = task.wrap_err_with(|| format!("following load task {task_id}"))?;
                settled += 1;
                unsettled.remove(&task_id);
                last_settled = Instant::now();
                if task.checked {
                    checked += 1;
                }
                if task.status == TaskStatus::Validated {
                    validated += 1;
                    expected_uploads += task.node_slots() as u64;
                } else {
                    other.push((task_id, task.status));
                }
                if settled % 10 == 0 || settled == tasks {
                    println!("load: {settled}/{tasks} settled after {:.1} s", started.elapsed().as_secs_f64());
                }
            }
            _ = stall_check.tick() => {
                if last_settled.elapsed() >= STALL_CHECK {
                    check_not_deadlocked(client, &unsettled, nodes).await?;
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
    let upload_deadline = Instant::now() + Duration::from_secs(10);
    let mut uploads = uploaded(relayer, &ids).await?;
    while uploads < expected_uploads && Instant::now() < upload_deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        uploads = uploaded(relayer, &ids).await?;
    }
    let last_block = client
        .provider()
        .get_block_number()
        .await
        .wrap_err("reading the block number")?;
    let reverted = verinfer_devchain::scan_transactions(client.provider(), first_block, last_block)
        .await
        .wrap_err("counting the run's reverted transactions")?
        .reverted;
    Ok(LoadReport {
        mode,
        tasks,
        validated,
        checked,
        other,
        nodes,
        elapsed,
        verified_uploads: uploads,
        reverted,
    })
}

/// Fails when every node holds, as its first node, a sampled task whose check waits for two free
/// checkers: no node will ever be free to check (each waits for the others), so nothing settles
/// until the checks expire (`queueTimeout`). A draw serves checks first, but a check needs two
/// nodes free at once, and a single freed node is taken by the next queued task meanwhile, so at
/// a high rate, or with a long queue, the fleet ends up so.
async fn check_not_deadlocked(
    client: &Client,
    unsettled: &std::collections::BTreeSet<u64>,
    nodes: usize,
) -> eyre::Result<()> {
    let mut checks = Vec::new();
    let mut running = 0;
    for &task_id in unsettled {
        let task = client
            .chain_task(task_id)
            .await
            .wrap_err_with(|| format!("reading load task {task_id}"))?;
        match task.status {
            TaskStatus::CheckQueued => checks.push(task_id),
            TaskStatus::Committing | TaskStatus::Revealing | TaskStatus::AwaitingSample => {
                running += 1
            }
            _ => {}
        }
    }
    if running == 0 && checks.len() + 1 >= nodes {
        bail!(
            "deadlocked: {} of the {nodes} nodes are each the first node of a sampled task whose check waits for two free checkers (tasks {checks:?}), so no two nodes are ever free to check; {} more tasks wait in the queue; nothing settles until the checks expire (queueTimeout)",
            checks.len(),
            unsettled.len() - checks.len()
        );
    }
    Ok(())
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

    fn report(mode: LoadMode, validated: u32, checked: u32) -> LoadReport {
        LoadReport {
            mode,
            tasks: validated,
            validated,
            checked,
            other: Vec::new(),
            nodes: 9,
            elapsed: Duration::from_secs(30),
            verified_uploads: 0,
            reverted: Vec::new(),
        }
    }

    #[test]
    fn a_sampled_run_says_how_many_were_checked_and_counts_one_gpu_run_per_unchecked_task() {
        let sampled = report(
            LoadMode::Sampled {
                sampling_bps: 1_000,
            },
            60,
            6,
        );
        assert_eq!(sampled.compute_runs(), 6 * 3 + 54);
        let line = sampled.render();
        assert!(
            line.starts_with(
                "load: 60 sampled image tasks (1 image, 64x64, 4 steps) on 9 nodes: 60 validated in 30.0 s = 120.0 tasks validated per minute (sampled at p = 10%: 6 checked by three nodes, 54 accepted unchecked; 72 GPU runs instead of 180);"
            ),
            "{line}"
        );

        let full = report(LoadMode::Full, 60, 0);
        assert_eq!(full.compute_runs(), 180);
        assert!(
            full.render().starts_with(
                "load: 60 image tasks (1 image, 64x64, 4 steps) on 9 nodes: 60 validated in 30.0 s = 120.0 tasks validated per minute; relayer"
            ),
            "{}",
            full.render()
        );
    }

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
