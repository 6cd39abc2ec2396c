//! `verinfer calibrate`: the relayer's calibration of the pHash threshold (`GET /v1/calibration`)
//! as a table: pairwise distances of recent validated image tasks by GPU-model pair and
//! precision, against the threshold in force, and the suggested threshold with its reason.

use std::path::PathBuf;

use clap::Args;
use eyre::WrapErr as _;
use url::Url;
use verinfer_wire::{
    ClientError, ErrorCode, RelayerClient,
    types::{CalibrationGroup, CalibrationView},
};

/// `verinfer calibrate`.
#[derive(Debug, Args)]
pub(crate) struct CalibrateArgs {
    /// Base URL of the relayer.
    #[arg(
        long,
        env = "VERINFER_RELAYER_URL",
        default_value = "http://127.0.0.1:8645"
    )]
    relayer: Url,
    /// Print the relayer's JSON answer as it is.
    #[arg(long)]
    json: bool,
    /// An extra CA file (PEM, one or more certificates) trusted for https:// URLs besides the
    /// system's roots (SSL_CERT_FILE replaces those).
    #[arg(long, env = "VERINFER_CA_FILE", value_name = "PEM")]
    ca_file: Option<PathBuf>,
}

/// Runs `verinfer calibrate`.
pub(crate) fn run(args: CalibrateArgs) -> eyre::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .wrap_err("cannot start the async runtime")?;
    let http = verinfer_wire::tls::http_client(args.ca_file.as_deref())?;
    let client = RelayerClient::with_http(args.relayer.clone(), http);
    let view = runtime
        .block_on(client.calibration())
        .map_err(|error| explain(error, &args.relayer))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        print!("{}", render(&view));
    }
    Ok(())
}

/// The error, said for an operator: an unreachable relayer or one without the route.
fn explain(error: ClientError, relayer: &Url) -> eyre::Report {
    match &error {
        ClientError::Transport(_) => eyre::Report::new(error).wrap_err(format!(
            "cannot reach the relayer at {relayer} (is it running? --relayer or \
             VERINFER_RELAYER_URL sets its URL)"
        )),
        _ if error.code() == Some(ErrorCode::NotFound) => eyre::Report::new(error).wrap_err(
            format!("the relayer at {relayer} serves no /v1/calibration (an older relayer?)"),
        ),
        _ => eyre::Report::new(error)
            .wrap_err(format!("the relayer at {relayer} gave no calibration")),
    }
}

/// Distances the compact histogram shows one by one; larger ones are counted after it.
const SPARK_MAX: usize = 32;
/// Bar heights of the compact histogram, ∝ √count (`·`: none).
const SPARKS: [char; 9] = ['·', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// The table and the suggestion, as printed.
fn render(view: &CalibrationView) -> String {
    let mut out = String::new();
    let threshold = view
        .threshold
        .map_or_else(|| "unknown".to_owned(), |t| format!("{t} bits"));
    out.push_str(&format!(
        "threshold in force: {threshold}; {} validated image task(s) read{}, {} pair(s)\n",
        view.tasks_read,
        if view.capped {
            format!(" (the latest {}: there are more)", view.max_tasks)
        } else {
            String::new()
        },
        view.pairs
    ));
    if view.groups.is_empty() {
        out.push_str("no validated image task with distances is indexed yet\n");
    } else {
        out.push('\n');
        out.push_str(&table(view));
        out.push_str(&format!(
            "\nhistogram: distances 0..={SPARK_MAX} bits, one column each, height ∝ √count \
             (· none){}; >{SPARK_MAX}: pairs farther apart\n",
            if view.threshold.is_some() {
                ", '|' after the threshold"
            } else {
                ""
            }
        ));
    }
    out.push('\n');
    let suggestion = &view.suggestion;
    match suggestion.threshold {
        Some(t) => out.push_str(&format!("suggested threshold: {t} bits\n")),
        None => out.push_str("suggested threshold: none\n"),
    }
    out.push_str(&format!("reason: {}\n", suggestion.reason));
    if let Some(needed) = &suggestion.min_stake_needed {
        let verdict = match suggestion.min_stake_sufficient {
            Some(true) => "; the minStake in force covers it",
            Some(false) => "; the minStake in force does not: raise it with the threshold",
            None => "",
        };
        out.push_str(&format!(
            "min stake needed: {needed} base units (stakePerThresholdBit {} × threshold){verdict}\n",
            view.stake_per_threshold_bit.as_deref().unwrap_or("?")
        ));
    }
    out.push_str(&format!("rule: {}\n", suggestion.rule));
    out
}

fn table(view: &CalibrationView) -> String {
    let header = [
        "GPU models",
        "precision",
        "pairs",
        "p50/p99/max",
        "above",
        "own",
        "histogram",
    ];
    let rows: Vec<[String; 7]> = view
        .groups
        .iter()
        .map(|group| {
            let [a, b] = &group.gpu_models;
            [
                format!("{a} × {b}"),
                group
                    .precision
                    .clone()
                    .unwrap_or_else(|| "unknown".to_owned()),
                group.pairs.to_string(),
                format!("{}/{}/{}", group.p50, group.p99, group.max),
                group.above_threshold.to_string(),
                group
                    .suggested_threshold
                    .map_or_else(|| "-".to_owned(), |t| t.to_string()),
                sparkline(group, view.threshold),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: [&str; 7]| {
        let mut text = String::new();
        for (index, (cell, width)) in cells.iter().zip(widths).enumerate() {
            let pad = width - cell.chars().count();
            // Text columns left-aligned, numbers right-aligned; no padding after the last.
            match index {
                0 | 1 => text.push_str(&format!("{cell}{}", " ".repeat(pad))),
                6 => text.push_str(cell),
                _ => text.push_str(&format!("{}{cell}", " ".repeat(pad))),
            }
            if index < 6 {
                text.push_str("  ");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header);
    for row in &rows {
        line(row.each_ref().map(String::as_str));
    }
    out.push_str(
        "(above: pairs the threshold in force judges as disagreeing; own: the group's 99.9 % \
         same-image threshold, - with under 30 same-image pairs)\n",
    );
    out
}

/// Distances 0..=[`SPARK_MAX`] as one character each (`|` after the threshold), then the count
/// of pairs farther apart.
fn sparkline(group: &CalibrationGroup, threshold: Option<u8>) -> String {
    let shown = &group.histogram[..group.histogram.len().min(SPARK_MAX + 1)];
    let peak = shown.iter().copied().max().unwrap_or(0).max(1) as f64;
    let mut line = String::new();
    for (distance, &count) in shown.iter().enumerate() {
        let level = if count == 0 {
            0
        } else {
            // 1..=8, ∝ √count.
            (((count as f64).sqrt() / peak.sqrt()) * 8.0)
                .ceil()
                .clamp(1.0, 8.0) as usize
        };
        line.push(SPARKS[level]);
        if threshold.is_some_and(|t| usize::from(t) == distance) {
            line.push('|');
        }
    }
    let beyond: u64 = group.histogram.iter().skip(SPARK_MAX + 1).sum();
    if beyond > 0 {
        line.push_str(&format!(" >{SPARK_MAX}: {beyond}"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use verinfer_wire::types::ThresholdSuggestion;

    fn view() -> CalibrationView {
        let mut histogram = vec![0; 65];
        histogram[0] = 100;
        histogram[3] = 25;
        histogram[12] = 1;
        histogram[40] = 2;
        CalibrationView {
            threshold: Some(10),
            stake_per_threshold_bit: Some("100".into()),
            min_stake: Some("1000".into()),
            tasks_read: 42,
            max_tasks: 20_000,
            capped: false,
            pairs: 128,
            groups: vec![CalibrationGroup {
                gpu_models: ["a100".into(), "h100".into()],
                precision: Some("f16".into()),
                pairs: 128,
                histogram,
                above_threshold: 3,
                same_image_pairs: 126,
                p50: 0,
                p90: 3,
                p99: 12,
                max: 40,
                suggested_threshold: Some(12),
            }],
            suggestion: ThresholdSuggestion {
                threshold: Some(12),
                rule: "the rule".into(),
                reason: "the reason".into(),
                min_stake_needed: Some("1200".into()),
                min_stake_sufficient: Some(false),
            },
        }
    }

    #[test]
    fn sparkline_marks_the_threshold_and_counts_the_far_pairs() {
        let view = view();
        let line = sparkline(&view.groups[0], Some(10));
        assert!(line.starts_with('█'), "{line:?}");
        assert_eq!(line.chars().nth(3), Some('▄'), "{line:?}");
        assert_eq!(line.chars().nth(11), Some('|'), "{line:?}");
        assert!(line.ends_with(" >32: 2"), "{line:?}");
    }

    #[test]
    fn render_prints_the_table_and_the_suggestion() {
        let text = render(&view());
        assert!(text.contains("threshold in force: 10 bits"), "{text}");
        assert!(text.contains("a100 × h100  f16"), "{text}");
        assert!(text.contains("0/12/40"), "{text}");
        assert!(text.contains("suggested threshold: 12 bits"), "{text}");
        assert!(text.contains("reason: the reason"), "{text}");
        assert!(text.contains("min stake needed: 1200"), "{text}");
        assert!(text.contains("raise it"), "{text}");
        assert!(text.contains("rule: the rule"), "{text}");
    }
}
