//! Explorer pages through `tower::ServiceExt::oneshot`: what each page shows for seeded chain
//! state (images, pHash grids, distances against the threshold, verdicts, slashes, stake), live
//! marking, pagination, search, escaping and the error pages.

mod common;

use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolEvent;
use alloy_primitives::{Address, B256, U256, aliases::U96};
use axum::http::StatusCode;
use common::*;
use verinfer_abi::{SlashReason, TaskKind, TaskStatus, Verinfer, VerinferEvent};
use verinfer_task::{FinishReason, TextOutput, text_digest};
use verinfer_wire::{UploadPayload, sign_result_upload};

async fn upload(
    harness: &Harness,
    signer: &PrivateKeySigner,
    task_id: u64,
    payload: &UploadPayload,
) {
    let request = sign_result_upload(signer, CHAIN_ID, VERINFER, task_id, payload)
        .await
        .unwrap();
    let (status, body) = harness
        .send_json(
            "POST",
            &format!("/v1/tasks/{task_id}/results"),
            serde_json::to_vec(&request).unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn html(harness: &Harness, uri: &str) -> (StatusCode, String) {
    let (status, bytes) = harness.send("GET", uri, "").await;
    (status, String::from_utf8(bytes).expect("pages are UTF-8"))
}

async fn page(harness: &Harness, uri: &str) -> String {
    let (status, body) = html(harness, uri).await;
    assert_eq!(status, StatusCode::OK, "GET {uri}: {body}");
    assert!(body.starts_with("<!DOCTYPE html>"), "GET {uri}: {body}");
    body
}

fn slash_log(
    node: Address,
    task_id: u64,
    amount: u128,
    reason: SlashReason,
) -> alloy_primitives::LogData {
    Verinfer::NodeSlashed {
        node,
        taskId: U256::from(task_id),
        reason: reason as u8,
        amount: U96::from(amount),
    }
    .encode_log_data()
}

#[tokio::test]
async fn task_page_shows_every_nodes_images_grids_and_distances() {
    let harness = Harness::new().await;
    let pngs: Vec<Vec<u8>> = (0..2).map(|seed| gradient_png(seed * 50 + 3, 64)).collect();
    harness.validated_image_task(1, &pngs).await;
    let payload = UploadPayload::image(pngs.clone());
    for signer in &harness.nodes {
        upload(&harness, signer, 1, &payload).await;
    }

    let body = page(&harness, "/explorer/tasks/1").await;
    // Two images from each of three nodes, each with alt text naming the node.
    assert_eq!(body.matches("class=\"result-image\"").count(), 6, "{body}");
    for (slot, node) in harness.node_addresses().into_iter().enumerate() {
        assert!(
            body.contains(&format!("Image 1 by node {} ({node}", slot + 1)),
            "{body}"
        );
    }
    // Every image's pHash as a grid, and two images × three pairs of differing-bit grids.
    let phash = phash(&pngs[0]);
    assert!(
        body.contains(&format!("pHash {phash:016x} as an 8 by 8 grid")),
        "{body}"
    );
    assert_eq!(body.matches("class=\"pair\"").count(), 6, "{body}");
    assert_eq!(
        body.matches("data-distance=\"0\" data-threshold=\"10\"")
            .count(),
        6
    );
    assert!(body.contains("d = 0 ≤ 10"));
    assert!(
        body.contains(
            "Validated: node 1 and node 2 and node 3 agreed, every image within 10 bits."
        )
    );
    // Final: no live updates; raw JSON linked.
    assert!(!body.contains("data-live"));
    assert!(body.contains("href=\"/v1/tasks/1\""));
    // Images are served by the API the page links to.
    let src = body
        .split("class=\"result-image\" src=\"")
        .nth(1)
        .expect("an image")
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let (status, bytes) = harness.send("GET", &src, "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(bytes.starts_with(b"\x89PNG"));
    // Every node agreed on its one settled task.
    let node = harness.node_addresses()[1];
    let body = page(&harness, &format!("/explorer/nodes/{node}")).await;
    assert!(body.contains("100.0 % of 1 settled"), "{body}");
}

#[tokio::test]
async fn a_running_task_is_live_and_shows_the_distance_of_each_revealed_pair() {
    let harness = Harness::new().await;
    harness.activate_params(1_700_000_000).await;
    harness
        .start_task(7, TaskKind::Image, 1, B256::repeat_byte(1))
        .await;
    let a = 0x0f0f_0000_ffff_1234_u64;
    let b = a ^ 0b1011; // three bits apart
    let far = !a; // 64 bits apart
    harness.reveal_image(7, 0, vec![a]).await;
    harness.reveal_image(7, 1, vec![b]).await;

    let body = page(&harness, "/explorer/tasks/7").await;
    assert!(body.contains("data-live=\"1\""), "{body}");
    assert!(body.contains("Revealing: the nodes reveal their results until"));
    // Only the revealed pair is compared, against the threshold in force (the test params').
    let threshold = test_params(1).threshold;
    assert_eq!(body.matches("data-distance=").count(), 1, "{body}");
    assert!(
        body.contains(&format!(
            "data-distance=\"3\" data-threshold=\"{threshold}\""
        )),
        "{body}"
    );
    assert!(body.contains("3 differing bits of 64"));

    harness.reveal_image(7, 2, vec![far]).await;
    let body = page(&harness, "/explorer/tasks/7").await;
    assert!(body.contains(&format!(
        "data-distance=\"64\" data-threshold=\"{threshold}\""
    )));
    assert!(body.contains("class=\"pair over\""), "{body}");

    harness
        .apply(&[VerinferEvent::TaskSettled {
            task_id: 7,
            outcome: TaskStatus::Validated,
            agreeing_mask: 0b011,
            distances: vec![3, 64, 61],
            threshold: 6,
            reward_per_node: 10,
        }])
        .await;
    let body = page(&harness, "/explorer/tasks/7").await;
    assert!(!body.contains("data-live"), "a settled task is final");
    // The settlement's distances and threshold are what the page judges by now.
    assert!(
        body.contains("data-distance=\"61\" data-threshold=\"6\""),
        "{body}"
    );
    assert!(
        body.contains("d = 3 ≤ 6") && body.contains("d = 64 &gt; 6"),
        "{body}"
    );
    assert!(body.contains("Validated: node 1 and node 2 agreed"));
    // Node 3 was not paid: its agreement rate says so, its task row too.
    let node3 = harness.node_addresses()[2];
    let body = page(&harness, &format!("/explorer/nodes/{node3}")).await;
    assert!(body.contains("0.0 % of 1 settled"), "{body}");
    assert!(body.contains("not paid"));
}

#[tokio::test]
async fn slashes_show_on_the_node_page_the_task_page_and_the_overview() {
    let harness = Harness::new().await;
    harness.activate_params(1_700_000_000).await;
    harness
        .start_task(3, TaskKind::Image, 1, B256::repeat_byte(1))
        .await;
    let cheater = harness.node_addresses()[2];
    harness
        .apply_logs(
            Some(1_700_000_100),
            &[slash_log(cheater, 3, 5_000, SlashReason::Disagreed)],
        )
        .await;

    let body = page(&harness, &format!("/explorer/nodes/{cheater}")).await;
    let slashes = body
        .split("id=\"slashes\"")
        .nth(1)
        .expect("a slashes section");
    assert_eq!(slashes.matches("class=\"slash\"").count(), 1, "{body}");
    assert!(slashes.contains("href=\"/explorer/tasks/3\"") && slashes.contains("disagreed"));
    // Stake over time: joined with STAKE, then the slash.
    assert!(body.contains("over 2 changes"), "{body}");
    assert!(body.contains("nvidia h100 80gb hbm3"));

    let body = page(&harness, "/explorer/tasks/3").await;
    assert!(body.contains("class=\"slash\"") && body.contains("5000 base units</span>: disagreed"));

    let body = page(&harness, "/explorer").await;
    let latest = body.split("id=\"latest-slashes\"").nth(1).unwrap();
    assert!(latest.contains(&format!("/explorer/nodes/{cheater}")) && latest.contains("disagreed"));
    // An honest node's page says it was never slashed.
    let honest = harness.node_addresses()[0];
    assert!(
        page(&harness, &format!("/explorer/nodes/{honest}"))
            .await
            .contains("Never slashed.")
    );
}

#[tokio::test]
async fn overview_pages_through_tasks_and_counts_them_by_status() {
    let harness = Harness::new().await;
    harness.activate_params(1_700_000_000).await;
    for task_id in 1..=30 {
        harness
            .start_task(task_id, TaskKind::Image, 1, B256::repeat_byte(1))
            .await;
    }
    harness.settle(30, TaskStatus::Aborted, 0, 1).await;
    let body = page(&harness, "/explorer").await;
    assert!(body.contains("30 tasks indexed"), "{body}");
    let latest = body.split("id=\"latest-tasks\"").nth(1).unwrap();
    assert_eq!(latest.matches("href=\"/explorer/tasks/").count(), 25);
    assert!(latest.contains("href=\"/explorer?before=6\""), "{latest}");
    assert!(body.contains("revealing") && body.contains("aborted"));
    assert!(body.contains("pHash threshold"));

    let body = page(&harness, "/explorer?before=6").await;
    let older = body.split("id=\"latest-tasks\"").nth(1).unwrap();
    assert_eq!(older.matches("href=\"/explorer/tasks/").count(), 5);
    assert!(!older.contains("Older tasks"));

    let (status, body) = html(&harness, "/explorer?before=x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn text_task_page_shows_the_output_and_the_digests() {
    let harness = Harness::new().await;
    harness
        .start_task(5, TaskKind::Text, 0, B256::repeat_byte(2))
        .await;
    let output = TextOutput {
        text: "The answer is <42> & more".into(),
        token_ids: vec![1, 2, 3],
        finish_reason: FinishReason::Length,
    };
    let digest = text_digest(&output);
    for slot in 0..3 {
        harness.reveal_text(5, slot, digest).await;
    }
    harness.settle(5, TaskStatus::Validated, 0b111, 1).await;
    upload(
        &harness,
        &harness.nodes[0],
        5,
        &UploadPayload::text(output.clone()),
    )
    .await;

    let body = page(&harness, "/explorer/tasks/5").await;
    assert!(
        body.contains("The answer is &lt;42&gt; &amp; more"),
        "{body}"
    );
    assert_eq!(body.matches(&digest.to_string()).count(), 3);
    assert_eq!(
        body.matches("data-distance=\"0\" data-threshold=\"0\"")
            .count(),
        3
    );
    assert!(body.contains("token for token"));
}

#[tokio::test]
async fn names_from_the_chain_are_escaped() {
    let harness = Harness::new().await;
    let node = Address::repeat_byte(0x99);
    harness
        .apply(&[VerinferEvent::NodeJoined {
            node,
            node_id: 9,
            gpu_model: B256::repeat_byte(0xbb),
            gpu_model_name: "<script>alert(1)</script>".into(),
            vram_mib: 8192,
            stake: 1,
            fee_tier: 0,
        }])
        .await;
    let body = page(&harness, &format!("/explorer/nodes/{node}")).await;
    assert!(!body.contains("<script>alert"), "{body}");
    assert!(body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
}

#[tokio::test]
async fn search_redirects_to_tasks_and_addresses_and_explains_bad_input() {
    let harness = Harness::new().await;
    harness
        .start_task(4, TaskKind::Image, 1, B256::repeat_byte(1))
        .await;
    let node = harness.node_addresses()[1];
    for (query, location) in [
        ("4".to_owned(), "/explorer/tasks/4".to_owned()),
        ("%234".to_owned(), "/explorer/tasks/4".to_owned()),
        (
            node.to_string().to_lowercase(),
            format!("/explorer/nodes/{node}"),
        ),
    ] {
        let response = harness
            .router()
            .oneshot(
                axum::http::Request::get(format!("/explorer/search?q={query}"))
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{query}");
        assert_eq!(response.headers()["location"], location.as_str());
    }
    let (status, body) = html(&harness, "/explorer/search?q=99").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("no task 99 is indexed"));
    let (status, body) = html(&harness, "/explorer/search?q=hello").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("is neither a task id"), "{body}");
    let (status, body) = html(&harness, "/explorer/tasks/abc").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("not a positive integer") && body.contains("role=\"alert\""));
    let (status, _) = html(&harness, "/explorer/tasks/12345").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = html(&harness, "/explorer/nodes/0x1234").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("is not an address"));
    let (status, _) = html(
        &harness,
        &format!("/explorer/nodes/{}", Address::repeat_byte(0x77)),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn assets_are_served_locally() {
    let harness = Harness::new().await;
    let body = page(&harness, "/explorer").await;
    assert!(
        !body.contains("https://") && !body.contains("http://"),
        "nothing from the internet"
    );
    assert!(body.contains("name=\"viewport\""));
    for (asset, kind) in [
        ("/explorer/assets/style.css", "text/css"),
        ("/explorer/assets/live.js", "text/javascript"),
    ] {
        let response = harness
            .router()
            .oneshot(
                axum::http::Request::get(asset)
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
    }
}

use tower::ServiceExt as _;

#[tokio::test]
async fn a_database_from_before_the_explorer_starts_with_each_nodes_counts() {
    use verinfer_relayer::explorer::ExplorerQueries;
    // Schema version 3 holding a validated task whose third node disagreed.
    let nodes = [1u8, 2, 3].map(Address::repeat_byte);
    let (_dir, url) = old_database_with_task(3, nodes, 0b011, "[0,30,30]").await;
    let store = verinfer_relayer::store::Store::connect(&url).await.unwrap();
    let queries = ExplorerQueries::new(&store);
    let mut agreed = Vec::new();
    for node in nodes {
        let stats = queries.node_agreement(node).await.unwrap();
        agreed.push((stats.selected, stats.settled, stats.agreed));
    }
    assert_eq!(agreed, vec![(1, 1, 1), (1, 1, 1), (1, 1, 0)]);
}
