//! `GET /v1/calibration` and `/explorer/calibration` on seeded tasks: distances grouped by the
//! sorted pair of GPU models and the args' precision, against the threshold in force, and the
//! suggested threshold.

mod common;

use alloy_primitives::{Address, B256};
use axum::http::StatusCode;
use common::*;
use verinfer_abi::{NO_RESULT, TaskKind, TaskStatus, VerinferEvent};
use verinfer_wire::types::{CalibrationGroup, CalibrationView};

const H100: &str = "nvidia h100 80gb hbm3";
const RTX: &str = "nvidia geforce rtx 4090";

/// Three more nodes, of another GPU model (the harness's three run [`H100`]).
async fn join_rtx_nodes(h: &Harness) -> [Address; 3] {
    let nodes = [
        Address::repeat_byte(0xd1),
        Address::repeat_byte(0xd2),
        Address::repeat_byte(0xd3),
    ];
    let joins: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(i, &node)| VerinferEvent::NodeJoined {
            node,
            node_id: 10 + i as u32,
            gpu_model: B256::repeat_byte(0xbb),
            gpu_model_name: RTX.into(),
            vram_mib: 24_564,
            stake: STAKE,
            fee_tier: 0,
        })
        .collect();
    h.apply(&joins).await;
    nodes
}

/// A task of `kind` on `nodes`, settled with `outcome` and `distances` (pair-major).
async fn settled_task(
    h: &Harness,
    task_id: u64,
    kind: TaskKind,
    args_hash: B256,
    nodes: [Address; 3],
    outcome: TaskStatus,
    distances: Vec<u16>,
) {
    let image_count = if kind == TaskKind::Image {
        (distances.len() / 3) as u8
    } else {
        0
    };
    let [created, started] = created_and_started(task_id, kind, image_count, args_hash, nodes);
    h.apply(&[
        created,
        started,
        VerinferEvent::TaskSettled {
            task_id,
            outcome,
            agreeing_mask: 0b011,
            distances,
            threshold: 10,
            reward_per_node: FEE / 3,
        },
    ])
    .await;
}

fn group<'a>(
    view: &'a CalibrationView,
    a: &str,
    b: &str,
    precision: Option<&str>,
) -> &'a CalibrationGroup {
    let mut models = [a.to_owned(), b.to_owned()];
    models.sort();
    view.groups
        .iter()
        .find(|g| g.gpu_models == models && g.precision.as_deref() == precision)
        .unwrap_or_else(|| panic!("no group {a} × {b} {precision:?} in {view:#?}"))
}

/// Seeds tasks (distances in bits, threshold 10 in force):
/// - 40 one-image H100 tasks with f32 args at distances 0, 1, 2, and one at 0, 12, 12;
/// - one two-image task on H100, RTX, RTX with f32 args (checks the pair-major layout);
/// - 20 tasks on H100, H100, RTX with args the relayer never read at 1, 5, 6;
/// - 5 RTX tasks at 2, 3, 4 and one with two missing results, args never read;
/// - ignored: an aborted image task, a validated text task.
async fn seeded() -> Harness {
    let h = Harness::new().await;
    h.activate_params(1_000).await;
    let rtx = join_rtx_nodes(&h).await;
    let [h0, h1, h2] = h.node_addresses();
    let (status, body) = h.send_json("POST", "/v1/args", valid_image_args()).await;
    assert!(status.is_success(), "{status} {body}");
    let f32_args: B256 = body["args_hash"].as_str().unwrap().parse().unwrap();
    let unread = B256::repeat_byte(0x42);
    let mut id = 0;
    let mut next = || {
        id += 1;
        id
    };
    let image = TaskKind::Image;
    let validated = TaskStatus::Validated;
    for _ in 0..40 {
        settled_task(
            &h,
            next(),
            image,
            f32_args,
            [h0, h1, h2],
            validated,
            vec![0, 1, 2],
        )
        .await;
    }
    settled_task(
        &h,
        next(),
        image,
        f32_args,
        [h0, h1, h2],
        validated,
        vec![0, 12, 12],
    )
    .await;
    settled_task(
        &h,
        next(),
        image,
        f32_args,
        [h0, rtx[0], rtx[1]],
        validated,
        vec![0, 1, 2, 3, 4, 5],
    )
    .await;
    for _ in 0..20 {
        settled_task(
            &h,
            next(),
            image,
            unread,
            [h0, h1, rtx[0]],
            validated,
            vec![1, 5, 6],
        )
        .await;
    }
    for _ in 0..5 {
        settled_task(&h, next(), image, unread, rtx, validated, vec![2, 3, 4]).await;
    }
    settled_task(
        &h,
        next(),
        image,
        unread,
        rtx,
        validated,
        vec![3, NO_RESULT, NO_RESULT],
    )
    .await;
    settled_task(
        &h,
        next(),
        image,
        unread,
        rtx,
        TaskStatus::Aborted,
        vec![40, 40, 40],
    )
    .await;
    settled_task(
        &h,
        next(),
        TaskKind::Text,
        unread,
        rtx,
        validated,
        vec![0, 0, 0],
    )
    .await;
    h
}

#[tokio::test]
async fn distances_grouped_by_model_pair_and_precision_with_a_suggestion() {
    let h = seeded().await;
    let view = verinfer_relayer::calibration::calibration(h.store())
        .await
        .unwrap();

    assert_eq!(view.threshold, Some(10));
    assert_eq!(view.stake_per_threshold_bit, Some((STAKE / 10).to_string()));
    assert_eq!(view.min_stake, Some(STAKE.to_string()));
    assert_eq!(view.tasks_read, 68);
    assert!(!view.capped);
    assert_eq!(view.groups.len(), 6, "{view:#?}");
    assert_eq!(view.pairs, 123 + 4 + 2 + 20 + 40 + 16);
    for g in &view.groups {
        assert_eq!(g.histogram.len(), 65);
        assert_eq!(g.histogram.iter().sum::<u64>(), g.pairs);
    }
    // Most pairs first.
    assert!(view.groups.windows(2).all(|w| w[0].pairs >= w[1].pairs));

    let hh = group(&view, H100, H100, Some("f32"));
    assert_eq!(hh.pairs, 123);
    assert_eq!(&hh.histogram[..3], &[41, 40, 40]);
    assert_eq!(hh.histogram[12], 2);
    assert_eq!(hh.above_threshold, 2);
    assert_eq!(hh.same_image_pairs, 123);
    assert_eq!((hh.p50, hh.p99, hh.max), (1, 12, 12));
    // Fewer than 1,000 same-image pairs: all of them must agree.
    assert_eq!(hh.suggested_threshold, Some(12));

    // Pair (0,1) = H100 × RTX, images 0 and 1; (0,2) = H100 × RTX; (1,2) = RTX × RTX.
    let hx32 = group(&view, H100, RTX, Some("f32"));
    assert_eq!(&hx32.histogram[..5], &[1, 1, 1, 1, 0]);
    let xx32 = group(&view, RTX, RTX, Some("f32"));
    assert_eq!(
        (xx32.histogram[4], xx32.histogram[5], xx32.pairs),
        (1, 1, 2)
    );
    assert_eq!(hx32.suggested_threshold, None);

    let hx = group(&view, H100, RTX, None);
    assert_eq!((hx.pairs, hx.histogram[5], hx.histogram[6]), (40, 20, 20));
    assert_eq!(hx.suggested_threshold, Some(6));
    assert_eq!(hx.above_threshold, 0);
    let hh_unread = group(&view, H100, H100, None);
    assert_eq!((hh_unread.pairs, hh_unread.histogram[1]), (20, 20));
    assert_eq!(hh_unread.suggested_threshold, None);
    // The missing results are skipped: 5 × 3 + 1.
    let xx = group(&view, RTX, RTX, None);
    assert_eq!((xx.pairs, xx.histogram[3]), (16, 6));

    // The H100 pair at f32 decides: 12 bits, above the 10 in force, which needs more stake.
    let s = &view.suggestion;
    assert_eq!(s.threshold, Some(12));
    assert_eq!(s.min_stake_needed, Some((STAKE / 10 * 12).to_string()));
    assert_eq!(s.min_stake_sufficient, Some(false));
    assert!(s.reason.contains(H100), "{}", s.reason);
    assert!(s.reason.contains("rejects 2 of"), "{}", s.reason);
    assert!(s.rule.contains("99.9 %"));
}

#[tokio::test]
async fn no_data_no_suggestion() {
    let h = Harness::new().await;
    let view = verinfer_relayer::calibration::calibration(h.store())
        .await
        .unwrap();
    assert_eq!(view.threshold, None);
    assert_eq!(view.tasks_read, 0);
    assert!(view.groups.is_empty());
    assert_eq!(view.suggestion.threshold, None);
    assert!(view.suggestion.reason.contains("too little data"));
    let (status, page) = h.send("GET", "/explorer/calibration", "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        String::from_utf8(page)
            .unwrap()
            .contains("No validated image task")
    );
}

#[tokio::test]
async fn json_route_and_html_page() {
    let h = seeded().await;
    let (status, body) = h.send_json("GET", "/v1/calibration", "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let view: CalibrationView = serde_json::from_value(body).unwrap();
    assert_eq!(view.suggestion.threshold, Some(12));
    assert_eq!(view.groups.len(), 6);

    let (status, page) = h.send("GET", "/explorer/calibration", "").await;
    assert_eq!(status, StatusCode::OK);
    let page = String::from_utf8(page).unwrap();
    assert!(page.contains("Threshold calibration"));
    // Model names sorted: the RTX before the H100.
    assert!(page.contains(&format!("{RTX} × {H100}")), "{page}");
    assert!(page.contains(&format!("{RTX} × {RTX}")));
    assert!(page.contains("precision unknown"));
    assert!(page.contains("class=\"hist\""));
    // The two H100 pairs at 12 bits: a bar above the threshold, and its row in the counts table.
    assert!(page.contains("class=\"over\""));
    assert!(page.contains("distance 12: 2"));
    assert!(page.contains("disagree"));
    assert!(page.contains("12 bits"));
}
