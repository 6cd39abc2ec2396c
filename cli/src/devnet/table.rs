//! Plain-text rendering of a [`TaskReport`]: nodes, their GPUs and results, pairwise distances
//! against the threshold, the verdict and who was paid or slashed.

use std::fmt::Write as _;

use verinfer_abi::{NO_RESULT, TaskKind, TaskStatus, TokenDecimals};
use verinfer_client::{NodeReport, RevealedResult, TaskReport};

/// The report as a block of text ending with a newline, amounts in tokens of `decimals`.
pub(crate) fn render(report: &TaskReport, decimals: TokenDecimals) -> String {
    let tokens = |units| decimals.format(units);
    let task = &report.task;
    let mut out = String::new();
    let kind = match task.kind {
        TaskKind::Image => format!(
            "image ({} image{})",
            task.image_count,
            plural(task.image_count)
        ),
        TaskKind::Text => "text".to_owned(),
    };
    let _ = writeln!(
        out,
        "task {} | {kind} | {} | fee {} tokens",
        task.task_id,
        task.status,
        tokens(task.fee)
    );
    if task.is_sampled() {
        let _ = writeln!(out, "  validation: {}", validation(report));
    }
    if report.nodes.is_empty() {
        let line = match task.status {
            TaskStatus::Expired => {
                "  expired in its queue: no draw found three suitable nodes in time; fee credited back to the creator"
            }
            TaskStatus::Cancelled => "  cancelled in its queue; fee refunded to the creator",
            _ => "  no nodes selected yet: waiting in its queue for a draw",
        };
        let _ = writeln!(out, "{line}");
        return out;
    }

    let rows: Vec<[String; 6]> = report
        .nodes
        .iter()
        .map(|node| node_row(node, task.kind, decimals))
        .collect();
    let header = [
        "slot",
        "node",
        "gpu (declared)",
        "result",
        "paid",
        "slashed",
    ]
    .map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::from(" ");
        for (index, (cell, width)) in row.iter().zip(widths).enumerate() {
            if index + 1 == row.len() {
                line.push_str(&format!(" {cell}"));
            } else {
                line.push_str(&format!(" {cell:<width$} "));
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }

    if let Some(settlement) = report.settlement.as_ref().filter(|s| !s.compared()) {
        // An unchecked sampled task: one node's result, compared with nobody's.
        let mut verdict = format!("  verdict: {}", settlement.outcome);
        if settlement.outcome == TaskStatus::Validated {
            let _ = write!(
                verdict,
                " (node 0's result accepted unchecked, not compared; {} tokens paid to it)",
                tokens(settlement.reward_per_node)
            );
        } else if settlement.outcome == TaskStatus::Errored {
            verdict.push_str(" (its node reported invalid args; fee credited back)");
        }
        let _ = writeln!(out, "{verdict}");
    } else if let Some(settlement) = &report.settlement {
        match task.kind {
            TaskKind::Image => {
                let _ = writeln!(
                    out,
                    "  pairwise pHash Hamming distances per image (threshold {} bits):",
                    settlement.threshold
                );
            }
            TaskKind::Text => {
                let _ = writeln!(
                    out,
                    "  pairwise digest comparison (text must match exactly; distance in differing bits):"
                );
            }
        }
        for (a, b) in [(0, 1), (0, 2), (1, 2)] {
            let distances = settlement.pair_distances(a, b);
            let line = if distances.contains(&NO_RESULT) {
                "no result on one side".to_owned()
            } else {
                let agree = match task.kind {
                    TaskKind::Image => distances
                        .iter()
                        .all(|&d| d <= u16::from(settlement.threshold)),
                    TaskKind::Text => distances.iter().all(|&d| d == 0),
                };
                let values = distances
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                let rule = match (task.kind, agree) {
                    (TaskKind::Image, true) => {
                        format!("all <= {}: agree", settlement.threshold)
                    }
                    (TaskKind::Image, false) => {
                        format!("some > {}: disagree", settlement.threshold)
                    }
                    (TaskKind::Text, true) => "equal: agree".to_owned(),
                    (TaskKind::Text, false) => "different: disagree".to_owned(),
                };
                format!("[{values}]  {rule}")
            };
            let _ = writeln!(out, "    {a}-{b}: {line}");
        }
        let agreeing: Vec<String> = report
            .nodes
            .iter()
            .filter(|node| node.agreed == Some(true))
            .map(|node| node.slot.to_string())
            .collect();
        let mut verdict = format!("  verdict: {}", settlement.outcome);
        match settlement.outcome {
            TaskStatus::Validated => {
                let _ = write!(
                    verdict,
                    " (nodes {} agree; {} tokens paid to each)",
                    agreeing.join(", "),
                    tokens(settlement.reward_per_node)
                );
            }
            TaskStatus::Aborted => {
                verdict.push_str(" (no two results agree; fee credited back to the creator)")
            }
            TaskStatus::Errored => {
                verdict.push_str(" (a majority reported invalid args; fee credited back)")
            }
            _ => {}
        }
        let slashed = report.total_slashed();
        if slashed > 0 {
            let _ = write!(verdict, "; {} tokens of stake slashed", tokens(slashed));
        }
        let _ = writeln!(out, "{verdict}");
    } else {
        let slots = task.node_slots();
        let _ = writeln!(
            out,
            "  not settled yet: {}/{slots} committed, {}/{slots} revealed",
            task.committed(),
            task.revealed()
        );
    }
    out
}

/// How a sampled task was validated, in plain words with its rate: checked by three nodes, or
/// accepted unchecked at rate p.
fn validation(report: &TaskReport) -> String {
    report.task.validation().describe(report.sampling_bps)
}

fn node_row(node: &NodeReport, kind: TaskKind, decimals: TokenDecimals) -> [String; 6] {
    let gpu = match (&node.gpu_model_name, node.vram_mib) {
        (Some(name), Some(vram)) => format!("{name} ({} GiB)", vram / 1024),
        (Some(name), None) => name.clone(),
        _ => "?".to_owned(),
    };
    let result = match &node.revealed {
        Some(RevealedResult::Images(phashes)) => phashes
            .iter()
            .map(|phash| format!("{phash:016x}"))
            .collect::<Vec<_>>()
            .join(" "),
        Some(RevealedResult::Text(digest)) => digest.to_string(),
        Some(RevealedResult::InvalidArgs) => "reported invalid args".to_owned(),
        None if node.committed => "committed, not revealed".to_owned(),
        None => "nothing committed".to_owned(),
    };
    let result = match kind {
        TaskKind::Image if matches!(node.revealed, Some(RevealedResult::Images(_))) => {
            format!("pHashes {result}")
        }
        TaskKind::Text if matches!(node.revealed, Some(RevealedResult::Text(_))) => {
            format!("digest {result}")
        }
        _ => result,
    };
    let paid = if node.reward > 0 {
        decimals.format(node.reward)
    } else {
        "-".to_owned()
    };
    let slashed = match node.slash {
        Some(slash) => format!(
            "{} ({}, kicked)",
            decimals.format(slash.amount),
            slash.reason
        ),
        None => "-".to_owned(),
    };
    [
        node.slot.to_string(),
        node.address.to_string(),
        gpu,
        result,
        paid,
        slashed,
    ]
}

fn plural(count: u8) -> &'static str {
    if count == 1 { "" } else { "s" }
}
