//! Route tests through `tower::ServiceExt::oneshot`: one test per bad request (status, error
//! code, and nothing stored), plus the happy paths of every route.

mod common;

use alloy::signers::local::PrivateKeySigner;
use alloy_primitives::{B256, Bytes, keccak256};
use axum::http::StatusCode;
use common::*;
use verinfer_abi::{TaskKind, TaskStatus, VerinferEvent};
use verinfer_task::INVALID_ARGS;
use verinfer_task::{FinishReason, TextOutput, text_digest};
use verinfer_wire::{UploadPayload, UploadRequest, sign_result_upload};

const TASK: u64 = 1;

fn pngs() -> Vec<Vec<u8>> {
    (0..3).map(|seed| gradient_png(seed * 40 + 1, 64)).collect()
}

async fn signed(signer: &PrivateKeySigner, task_id: u64, payload: &UploadPayload) -> UploadRequest {
    sign_result_upload(signer, CHAIN_ID, VERINFER, task_id, payload)
        .await
        .unwrap()
}

fn json(request: &UploadRequest) -> Vec<u8> {
    serde_json::to_vec(request).unwrap()
}

/// Sends `body` to `uri` and checks the status, the error code and that nothing was stored.
async fn assert_rejected(
    harness: &Harness,
    method: &str,
    uri: &str,
    body: Vec<u8>,
    status: StatusCode,
    code: &str,
) {
    let before = harness.stored().await;
    let (got_status, body) = harness.send_json(method, uri, body).await;
    assert_eq!(got_status, status, "{body}");
    assert_eq!(error_code(&body), code, "{body}");
    assert!(
        !body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "{body}"
    );
    assert_eq!(
        harness.stored().await,
        before,
        "a rejected request stored something"
    );
}

// ------------------------------------------------------------------ args

#[tokio::test]
async fn args_upload_is_idempotent_and_served_by_hash_and_task() {
    let harness = Harness::new().await;
    let args = valid_image_args();
    let (status, body) = harness.send_json("POST", "/v1/args", args.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let hash = keccak256(&args);
    assert_eq!(body["args_hash"], format!("{hash}"));
    let (status, body) = harness.send_json("POST", "/v1/args", args.clone()).await;
    assert_eq!(
        (status, body["created"].as_bool()),
        (StatusCode::OK, Some(false))
    );
    assert_eq!(harness.stored().await.blobs, 1);

    let (status, bytes) = harness.send("GET", &format!("/v1/args/{hash}"), "").await;
    assert_eq!(
        (status, bytes.as_slice()),
        (StatusCode::OK, args.as_slice())
    );

    harness.start_task(TASK, TaskKind::Image, 4, hash).await;
    let (status, bytes) = harness
        .send("GET", &format!("/v1/tasks/{TASK}/args"), "")
        .await;
    assert_eq!((status, bytes), (StatusCode::OK, args));
}

#[tokio::test]
async fn args_too_large_is_413() {
    let harness = Harness::new().await;
    assert_rejected(
        &harness,
        "POST",
        "/v1/args",
        vec![b' '; 64 * 1024 + 1],
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
    )
    .await;
}

#[tokio::test]
async fn invalid_args_are_422_naming_the_problem() {
    let harness = Harness::new().await;
    let mut args: serde_json::Value = serde_json::from_slice(&valid_image_args()).unwrap();
    args["width"] = 100.into(); // not a multiple of 8
    let before = harness.stored().await;
    let (status, body) = harness
        .send_json("POST", "/v1/args", serde_json::to_vec(&args).unwrap())
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_args")
    );
    assert!(
        body["error"]["message"].as_str().unwrap().contains("width"),
        "{body}"
    );
    assert_eq!(harness.stored().await, before);
    assert_rejected(
        &harness,
        "POST",
        "/v1/args",
        b"not json".to_vec(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_args",
    )
    .await;
    assert_rejected(
        &harness,
        "POST",
        "/v1/args",
        Vec::new(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_args",
    )
    .await;
}

#[tokio::test]
async fn args_validation_can_be_switched_off() {
    let harness = Harness::with_settings(verinfer_relayer::ApiSettings {
        validate_args: false,
        ..default_settings()
    })
    .await;
    let (status, body) = harness
        .send_json("POST", "/v1/args", b"opaque bytes".to_vec())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn unknown_args_and_task_args_are_404() {
    let harness = Harness::new().await;
    let hash = B256::repeat_byte(9);
    assert_rejected(
        &harness,
        "GET",
        &format!("/v1/args/{hash}"),
        Vec::new(),
        StatusCode::NOT_FOUND,
        "unknown_args",
    )
    .await;
    assert_rejected(
        &harness,
        "GET",
        "/v1/tasks/5/args",
        Vec::new(),
        StatusCode::NOT_FOUND,
        "unknown_task",
    )
    .await;
    harness.start_task(5, TaskKind::Image, 1, hash).await;
    assert_rejected(
        &harness,
        "GET",
        "/v1/tasks/5/args",
        Vec::new(),
        StatusCode::NOT_FOUND,
        "unknown_args",
    )
    .await;
    assert_rejected(
        &harness,
        "GET",
        "/v1/args/0x1234",
        Vec::new(),
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
}

// ------------------------------------------------------------------ result uploads

#[tokio::test]
async fn image_upload_is_verified_stored_and_served() {
    let harness = Harness::new().await;
    let pngs = pngs();
    harness.validated_image_task(TASK, &pngs).await;
    let payload = UploadPayload::image(pngs.clone());
    for signer in &harness.nodes {
        let request = signed(signer, TASK, &payload).await;
        let (status, body) = harness
            .send_json("POST", "/v1/tasks/1/results", json(&request))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["payload_hash"], format!("{}", payload.payload_hash()));
    }
    // Three nodes uploaded the same PNGs: stored once each.
    let stored = harness.stored().await;
    assert_eq!(
        (
            stored.blobs,
            stored.results,
            stored.result_items,
            stored.blob_files
        ),
        (3, 3, 9, 3)
    );

    // The same upload again is accepted without storing anything new.
    let again = signed(&harness.nodes[0], TASK, &payload).await;
    let (status, body) = harness
        .send_json("POST", "/v1/tasks/1/results", json(&again))
        .await;
    assert_eq!(
        (status, body["created"].as_bool()),
        (StatusCode::OK, Some(false)),
        "{body}"
    );
    assert_eq!(harness.stored().await, stored);

    let (status, body) = harness
        .send_json("GET", "/v1/tasks/1/results?inline=true", "")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert!(body["pending_nodes"].as_array().unwrap().is_empty());
    for result in results {
        let images = result["images"].as_array().unwrap();
        for (index, image) in images.iter().enumerate() {
            use base64::Engine as _;
            let png = base64::engine::general_purpose::STANDARD
                .decode(image["png_base64"].as_str().unwrap())
                .unwrap();
            assert_eq!(png, pngs[index]);
            assert_eq!(image["phash"], result["revealed_phashes"][index]);
            assert_eq!(
                image["phash"].as_str().unwrap(),
                format!("{:#018x}", phash(&png))
            );
            let (status, blob) = harness
                .send("GET", image["url"].as_str().unwrap(), "")
                .await;
            assert_eq!((status, blob), (StatusCode::OK, pngs[index].clone()));
        }
    }

    let (status, task) = harness.send_json("GET", "/v1/tasks/1", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(task["status"], "validated");
    assert_eq!(task["settlement"]["agreeing_mask"], 7);
    assert!(
        task["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["uploaded"] == true && n["agreed"] == true)
    );

    let (_, metrics) = harness.send("GET", "/metrics", "").await;
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains("verinfer_relayer_upload_verifications_total{outcome=\"ok\"} 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("route=\"/v1/tasks/{id}/results\",status=\"201\"} 3"),
        "{metrics}"
    );
}

#[tokio::test]
async fn results_list_only_agreeing_nodes_and_pending_ones() {
    let harness = Harness::new().await;
    let pngs = pngs();
    harness
        .start_task(TASK, TaskKind::Image, 3, B256::repeat_byte(1))
        .await;
    let good: Vec<u64> = pngs.iter().map(|p| phash(p)).collect();
    harness.reveal_image(TASK, 0, good.clone()).await;
    harness.reveal_image(TASK, 1, good.clone()).await;
    harness
        .reveal_image(TASK, 2, good.iter().map(|h| !h).collect())
        .await;
    harness.settle(TASK, TaskStatus::Validated, 0b011, 3).await;
    let payload = UploadPayload::image(pngs.clone());
    let request = signed(&harness.nodes[0], TASK, &payload).await;
    assert_eq!(
        harness
            .send_json("POST", "/v1/tasks/1/results", json(&request))
            .await
            .0,
        StatusCode::CREATED
    );
    let (status, body) = harness.send_json("GET", "/v1/tasks/1/results", "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"].as_array().unwrap().len(), 1);
    assert_eq!(
        body["results"][0]["node"],
        format!("{:#x}", harness.nodes[0].address())
    );
    assert!(body["results"][0]["images"][0].get("png_base64").is_none());
    assert_eq!(
        body["pending_nodes"],
        serde_json::json!([format!("{:#x}", harness.nodes[1].address())])
    );
}

#[tokio::test]
async fn text_upload_is_verified_against_the_revealed_digest() {
    let harness = Harness::new().await;
    let output = TextOutput {
        text: "red, green, blue".into(),
        token_ids: vec![1, 2, 3],
        finish_reason: FinishReason::Stop,
    };
    harness
        .start_task(2, TaskKind::Text, 0, B256::repeat_byte(2))
        .await;
    for slot in 0..3 {
        harness.reveal_text(2, slot, text_digest(&output)).await;
    }
    harness.settle(2, TaskStatus::Validated, 0b111, 1).await;
    let request = signed(&harness.nodes[1], 2, &UploadPayload::text(output.clone())).await;
    let (status, body) = harness
        .send_json("POST", "/v1/tasks/2/results", json(&request))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = harness.send_json("GET", "/v1/tasks/2/results", "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"][0]["output"]["text"], "red, green, blue");
    assert_eq!(
        body["results"][0]["revealed_digest"],
        format!("{}", text_digest(&output))
    );
    assert_eq!(body["pending_nodes"].as_array().unwrap().len(), 2);

    // Another output under the same node's signature: digest mismatch.
    let other = TextOutput {
        text: "red, green, yellow".into(),
        ..output
    };
    let request = signed(&harness.nodes[0], 2, &UploadPayload::text(other)).await;
    assert_rejected(
        &harness,
        "POST",
        "/v1/tasks/2/results",
        json(&request),
        StatusCode::UNPROCESSABLE_ENTITY,
        "digest_mismatch",
    )
    .await;
}

#[tokio::test]
async fn malformed_upload_json_is_400() {
    let harness = Harness::new().await;
    harness.validated_image_task(TASK, &pngs()).await;
    assert_rejected(
        &harness,
        "POST",
        "/v1/tasks/1/results",
        b"{\"node\":".to_vec(),
        StatusCode::BAD_REQUEST,
        "malformed_json",
    )
    .await;
    let mut value =
        serde_json::to_value(signed(&harness.nodes[0], TASK, &UploadPayload::image(pngs())).await)
            .unwrap();
    value["payload"]["images_png_base64"][0] = "%%%".into();
    assert_rejected(
        &harness,
        "POST",
        "/v1/tasks/1/results",
        serde_json::to_vec(&value).unwrap(),
        StatusCode::BAD_REQUEST,
        "malformed_json",
    )
    .await;
}

#[tokio::test]
async fn oversized_upload_is_413() {
    let harness = Harness::with_settings(verinfer_relayer::ApiSettings {
        max_upload_bytes: 4096,
        ..default_settings()
    })
    .await;
    harness.validated_image_task(TASK, &pngs()).await;
    let request = signed(&harness.nodes[0], TASK, &UploadPayload::image(pngs())).await;
    assert!(json(&request).len() > 4096);
    assert_rejected(
        &harness,
        "POST",
        "/v1/tasks/1/results",
        json(&request),
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
    )
    .await;
}

#[tokio::test]
async fn upload_for_unknown_task_is_404() {
    let harness = Harness::new().await;
    let request = signed(&harness.nodes[0], 99, &UploadPayload::image(pngs())).await;
    assert_rejected(
        &harness,
        "POST",
        "/v1/tasks/99/results",
        json(&request),
        StatusCode::NOT_FOUND,
        "unknown_task",
    )
    .await;
    assert_rejected(
        &harness,
        "POST",
        "/v1/tasks/abc/results",
        json(&request),
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
}

#[tokio::test]
async fn upload_by_a_node_not_selected_is_403() {
    let harness = Harness::new().await;
    harness.validated_image_task(TASK, &pngs()).await;
    let request = signed(&harness.outsider, TASK, &UploadPayload::image(pngs())).await;
    assert_rejected(
        &harness,
        "POST",
        "/v1/tasks/1/results",
        json(&request),
        StatusCode::FORBIDDEN,
        "not_selected",
    )
    .await;
}

#[tokio::test]
async fn upload_signed_by_someone_else_is_401() {
    let harness = Harness::new().await;
    harness.validated_image_task(TASK, &pngs()).await;
    let mut request = signed(&harness.outsider, TASK, &UploadPayload::image(pngs())).await;
    request.node = harness.nodes[0].address(); // claims a selected node, signed by another key
    assert_rejected(
        &harness,
        "POST",
        "/v1/tasks/1/results",
        json(&request),
        StatusCode::UNAUTHORIZED,
        "bad_signature",
    )
    .await;
}

#[tokio::test]
async fn upload_signed_for_another_task_is_401() {
    let harness = Harness::new().await;
    harness.validated_image_task(TASK, &pngs()).await;
    let request = signed(&harness.nodes[0], TASK + 1, &UploadPayload::image(pngs())).await;
    assert_rejected(
        &harness,
        "POST",
        "/v1/tasks/1/results",
        json(&request),
        StatusCode::UNAUTHORIZED,
        "bad_signature",
    )
    .await;
}

#[tokio::test]
async fn malformed_signature_is_401() {
    let harness = Harness::new().await;
    harness.validated_image_task(TASK, &pngs()).await;
    let mut request = signed(&harness.nodes[0], TASK, &UploadPayload::image(pngs())).await;
    request.signature = Bytes::from(vec![1u8; 64]);
    assert_rejected(
        &harness,
        "POST",
        "/v1/tasks/1/results",
        json(&request),
        StatusCode::UNAUTHORIZED,
        "bad_signature",
    )
    .await;
}

#[tokio::test]
async fn upload_whose_phash_differs_from_the_reveal_is_422() {
    let harness = Harness::new().await;
    let pngs = pngs();
    harness.validated_image_task(TASK, &pngs).await;
    let mut forged = pngs.clone();
    forged[2] = gradient_png(200, 64);
    assert_ne!(phash(&forged[2]), phash(&pngs[2]));
    let request = signed(&harness.nodes[0], TASK, &UploadPayload::image(forged)).await;
    assert_rejected(
        &harness,
        "POST",
        "/v1/tasks/1/results",
        json(&request),
        StatusCode::UNPROCESSABLE_ENTITY,
        "digest_mismatch",
    )
    .await;
}

#[tokio::test]
async fn upload_with_the_wrong_image_count_is_422() {
    let harness = Harness::new().await;
    let pngs = pngs();
    harness.validated_image_task(TASK, &pngs).await;
    let request = signed(
        &harness.nodes[0],
        TASK,
        &UploadPayload::image(pngs[..2].to_vec()),
    )
    .await;
    assert_rejected(
        &harness,
        "POST",
        "/v1/tasks/1/results",
        json(&request),
        StatusCode::UNPROCESSABLE_ENTITY,
        "wrong_image_count",
    )
    .await;
}

#[tokio::test]
async fn upload_of_a_non_png_is_422() {
    let harness = Harness::new().await;
    let pngs = pngs();
    harness.validated_image_task(TASK, &pngs).await;
    let mut files = pngs.clone();
    files[0] = b"GIF89a not a png".to_vec();
    let request = signed(
        &harness.nodes[0],
        TASK,
        &UploadPayload::image(files.clone()),
    )
    .await;
    assert_rejected(
        &harness,
        "POST",
        "/v1/tasks/1/results",
        json(&request),
        StatusCode::UNPROCESSABLE_ENTITY,
        "bad_png",
    )
    .await;
    // A PNG signature followed by garbage does not decode.
    files[0] = [b"\x89PNG\r\n\x1a\n".as_slice(), b"garbage"].concat();
    let request = signed(&harness.nodes[0], TASK, &UploadPayload::image(files)).await;
    assert_rejected(
        &harness,
        "POST",
        "/v1/tasks/1/results",
        json(&request),
        StatusCode::UNPROCESSABLE_ENTITY,
        "bad_png",
    )
    .await;
}

#[tokio::test]
async fn text_payload_for_an_image_task_is_422() {
    let harness = Harness::new().await;
    harness.validated_image_task(TASK, &pngs()).await;
    let output = TextOutput {
        text: "x".into(),
        token_ids: vec![1],
        finish_reason: FinishReason::Length,
    };
    let request = signed(&harness.nodes[0], TASK, &UploadPayload::text(output)).await;
    assert_rejected(
        &harness,
        "POST",
        "/v1/tasks/1/results",
        json(&request),
        StatusCode::UNPROCESSABLE_ENTITY,
        "wrong_payload_kind",
    )
    .await;
}

#[tokio::test]
async fn upload_before_the_reveal_is_indexed_is_409() {
    let harness = Harness::new().await;
    harness
        .start_task(TASK, TaskKind::Image, 3, B256::repeat_byte(1))
        .await;
    let request = signed(&harness.nodes[0], TASK, &UploadPayload::image(pngs())).await;
    assert_rejected(
        &harness,
        "POST",
        "/v1/tasks/1/results",
        json(&request),
        StatusCode::CONFLICT,
        "not_revealed",
    )
    .await;
    // Not yet indexed is not a failed verification.
    let (_, metrics) = harness.send("GET", "/metrics", "").await;
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains("verinfer_relayer_upload_verifications_total{outcome=\"not_indexed\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("verinfer_relayer_upload_verifications_total{outcome=\"failed\"} 0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn upload_by_a_node_that_reported_invalid_args_is_409() {
    let harness = Harness::new().await;
    harness
        .start_task(3, TaskKind::Text, 0, B256::repeat_byte(3))
        .await;
    harness.reveal_text(3, 0, INVALID_ARGS).await;
    harness
        .apply(&[verinfer_abi::VerinferEvent::InvalidArgsReported {
            task_id: 3,
            node: harness.nodes[0].address(),
        }])
        .await;
    let output = TextOutput {
        text: "x".into(),
        token_ids: vec![1],
        finish_reason: FinishReason::Stop,
    };
    let request = signed(&harness.nodes[0], 3, &UploadPayload::text(output)).await;
    assert_rejected(
        &harness,
        "POST",
        "/v1/tasks/3/results",
        json(&request),
        StatusCode::CONFLICT,
        "reported_invalid_args",
    )
    .await;
}

#[tokio::test]
async fn a_second_different_upload_by_the_same_node_is_409() {
    let harness = Harness::new().await;
    let pngs = pngs();
    harness.validated_image_task(TASK, &pngs).await;
    let first = signed(&harness.nodes[0], TASK, &UploadPayload::image(pngs.clone())).await;
    assert_eq!(
        harness
            .send_json("POST", "/v1/tasks/1/results", json(&first))
            .await
            .0,
        StatusCode::CREATED
    );
    // Same pixels (same pHashes, so it verifies), other PNG bytes.
    let mut recompressed = pngs.clone();
    recompressed[0] = gradient_png_with(1, 64, image::codecs::png::CompressionType::Fast);
    assert_ne!(recompressed[0], pngs[0]);
    assert_eq!(phash(&recompressed[0]), phash(&pngs[0]));
    let second = signed(&harness.nodes[0], TASK, &UploadPayload::image(recompressed)).await;
    assert_rejected(
        &harness,
        "POST",
        "/v1/tasks/1/results",
        json(&second),
        StatusCode::CONFLICT,
        "already_uploaded",
    )
    .await;
}

// ------------------------------------------------------------------ reads

#[tokio::test]
async fn results_of_a_task_not_validated_are_409_and_unknown_404() {
    let harness = Harness::new().await;
    harness
        .start_task(TASK, TaskKind::Image, 3, B256::repeat_byte(1))
        .await;
    let (status, body) = harness.send_json("GET", "/v1/tasks/1/results", "").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::CONFLICT, "task_not_validated")
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revealing"),
        "{body}"
    );
    harness.settle(TASK, TaskStatus::Aborted, 0, 3).await;
    let (status, body) = harness.send_json("GET", "/v1/tasks/1/results", "").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::CONFLICT, "task_not_validated")
    );
    let (status, body) = harness.send_json("GET", "/v1/tasks/2/results", "").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "unknown_task")
    );
}

#[tokio::test]
async fn task_and_nodes_views() {
    let harness = Harness::new().await;
    harness
        .start_task(TASK, TaskKind::Image, 2, B256::repeat_byte(1))
        .await;
    let (status, task) = harness.send_json("GET", "/v1/tasks/1", "").await;
    assert_eq!(status, StatusCode::OK, "{task}");
    assert_eq!(task["kind"], "image");
    assert_eq!(task["status"], "revealing");
    assert_eq!(task["committed_mask"], 7);
    assert_eq!(task["fee"], FEE.to_string());
    assert_eq!(task["nodes"].as_array().unwrap().len(), 3);
    assert_eq!(task["settlement"], serde_json::Value::Null);

    let (status, nodes) = harness.send_json("GET", "/v1/nodes", "").await;
    assert_eq!(status, StatusCode::OK);
    let nodes = nodes["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    assert!(
        nodes
            .iter()
            .all(|n| n["state"] == "busy" && n["task_id"] == 1 && n["tier"] == 6)
    );
    assert_eq!(nodes[0]["gpu_model_name"], "nvidia h100 80gb hbm3");
    assert_eq!(nodes[0]["stake"], STAKE.to_string());

    let (status, body) = harness.send_json("GET", "/v1/tasks/0", "").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "bad_request")
    );
    let (status, body) = harness.send_json("GET", "/v1/nodes?limit=x", "").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "bad_request")
    );
}

/// The devnet's parameter values with `min_task_fee`.
fn params(min_task_fee: u128) -> verinfer_abi::IVerinfer::Params {
    test_params(min_task_fee)
}

#[tokio::test]
async fn registry_params_fee_tiers_expiry_and_credits_are_served() {
    use alloy::sol_types::SolEvent;
    use alloy_primitives::{Address, U256, aliases::U24};
    use verinfer_abi::{CreditReason, Verinfer};
    let harness = Harness::new().await;
    let h100 = B256::repeat_byte(0xaa);
    let (status, body) = harness.send_json("GET", "/v1/params", "").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "not_found"),
        "no version indexed yet"
    );

    // The deployment: version 1 in force, the H100 and an inactive model registered.
    let min_fee = FEE / 8;
    let other = B256::repeat_byte(0xbb);
    harness
        .apply_logs(
            Some(1_000),
            &[
                Verinfer::ParamsScheduled {
                    version: U24::from(1),
                    params: params(min_fee),
                    effectiveAt: alloy_primitives::aliases::U40::from(1_000),
                }
                .encode_log_data(),
                Verinfer::ParamsActivated {
                    version: U24::from(1),
                }
                .encode_log_data(),
                Verinfer::GpuModelAdded {
                    id: h100,
                    name: "nvidia h100 80gb hbm3".into(),
                    vramMiB: 81_559,
                }
                .encode_log_data(),
                Verinfer::GpuModelAdded {
                    id: other,
                    name: "tesla t4".into(),
                    vramMiB: 15_360,
                }
                .encode_log_data(),
                Verinfer::GpuModelActiveSet {
                    id: other,
                    active: false,
                }
                .encode_log_data(),
                Verinfer::FeeTierSet {
                    node: harness.nodes[0].address(),
                    feeTier: 2,
                }
                .encode_log_data(),
            ],
        )
        .await;
    let (status, models) = harness.send_json("GET", "/v1/gpu-models", "").await;
    assert_eq!(status, StatusCode::OK, "{models}");
    assert_eq!(
        models["models"],
        serde_json::json!([
            {"id": h100, "name": "nvidia h100 80gb hbm3", "vram_mib": 81_559, "active": true, "available_nodes": 3},
            {"id": other, "name": "tesla t4", "vram_mib": 15_360, "active": false, "available_nodes": 0},
        ])
    );
    let (_, nodes) = harness.send_json("GET", "/v1/nodes", "").await;
    let tiers: Vec<_> = nodes["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["fee_tier"].as_u64().unwrap(), n["claimable"].clone()))
        .collect();
    assert_eq!(tiers, [(2, "0".into()), (0, "0".into()), (0, "0".into())]);

    // Version 2 is scheduled for a time long past now: it is in force (as `params()` says)
    // before anything activates it; version 3, scheduled far ahead, is not.
    harness
        .apply_logs(
            Some(1_100),
            &[Verinfer::ParamsScheduled {
                version: U24::from(2),
                params: params(2 * min_fee),
                effectiveAt: alloy_primitives::aliases::U40::from(1_200),
            }
            .encode_log_data()],
        )
        .await;
    let (status, view) = harness.send_json("GET", "/v1/params", "").await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["in_force"]["version"], 2, "{view}");
    assert_eq!(view["scheduled"], serde_json::Value::Null);
    assert_eq!(
        view["in_force"]["params"]["min_task_fee"],
        (2 * min_fee).to_string()
    );

    // A task created before version 2 is activated runs under version 1: its fee is 8 minimums.
    let creator = Address::repeat_byte(0xcc);
    harness
        .apply_logs(
            Some(2_000),
            &[
                Verinfer::TaskCreated {
                    taskId: U256::from(TASK),
                    creator,
                    kind: TaskKind::Text.into(),
                    argsHash: B256::repeat_byte(1),
                    imageCount: 0,
                    minVramMiB: 0,
                    gpuModel: h100,
                    fee: alloy_primitives::aliases::U96::from(FEE),
                    mode: verinfer_abi::ValidationMode::Full.into(),
                }
                .encode_log_data(),
                Verinfer::TaskQueued {
                    taskId: U256::from(TASK),
                    queueKey: B256::repeat_byte(9),
                }
                .encode_log_data(),
            ],
        )
        .await;
    let (_, task) = harness.send_json("GET", "/v1/tasks/1", "").await;
    assert_eq!(task["status"], "queued", "{task}");
    assert_eq!(task["gpu_model_name"], "nvidia h100 80gb hbm3");
    assert_eq!(
        (
            task["params_version"].as_u64(),
            task["fee_level"].as_u64(),
            task["expires_at"].as_u64()
        ),
        (Some(1), Some(3), Some(2_000 + 3_600))
    );
    assert_eq!(task["seed_block"], serde_json::Value::Null);

    // Activated, and a far-future version 3 scheduled: 2 in force, 3 announced.
    harness
        .apply_logs(
            Some(3_000),
            &[
                Verinfer::ParamsActivated {
                    version: U24::from(2),
                }
                .encode_log_data(),
                Verinfer::ParamsScheduled {
                    version: U24::from(3),
                    params: params(3 * min_fee),
                    effectiveAt: alloy_primitives::aliases::U40::from(u64::from(u32::MAX) * 4),
                }
                .encode_log_data(),
            ],
        )
        .await;
    let (_, view) = harness.send_json("GET", "/v1/params", "").await;
    assert_eq!(
        (
            view["in_force"]["version"].as_u64(),
            view["scheduled"]["version"].as_u64()
        ),
        (Some(2), Some(3)),
        "{view}"
    );
    harness
        .apply_logs(
            None,
            &[Verinfer::ParamsScheduleCancelled {
                version: U24::from(3),
            }
            .encode_log_data()],
        )
        .await;
    let (_, view) = harness.send_json("GET", "/v1/params", "").await;
    assert_eq!(view["scheduled"], serde_json::Value::Null, "{view}");

    // The task expires: its fee is credited to the creator, who withdraws it.
    harness
        .apply(&[
            VerinferEvent::TaskExpired { task_id: TASK },
            VerinferEvent::BalanceCredited {
                account: creator,
                task_id: TASK,
                reason: CreditReason::FeeRefunded,
                amount: FEE,
            },
        ])
        .await;
    let (_, task) = harness.send_json("GET", "/v1/tasks/1", "").await;
    assert_eq!(task["status"], "expired");
    assert_eq!(task["queue_key"], serde_json::Value::Null);
    assert_eq!(task["credits"].as_array().unwrap().len(), 1, "{task}");
    assert_eq!(
        task["credits"][0]["account"],
        creator.to_string().to_lowercase()
    );
    assert_eq!(task["credits"][0]["reason"], "fee_refunded");
    assert_eq!(task["credits"][0]["amount"], FEE.to_string());
    let uri = format!("/v1/accounts/{creator}");
    let (_, account) = harness.send_json("GET", &uri, "").await;
    assert_eq!(
        (
            &account["claimable"],
            &account["credited"],
            &account["withdrawn"]
        ),
        (
            &FEE.to_string().into(),
            &FEE.to_string().into(),
            &"0".into()
        ),
        "{account}"
    );
    harness
        .apply(&[VerinferEvent::Withdrawn {
            account: creator,
            amount: FEE,
        }])
        .await;
    let (status, account) = harness.send_json("GET", &uri, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&account["claimable"], &account["withdrawn"]),
        (&"0".into(), &FEE.to_string().into())
    );
    assert_eq!(account["credits"][0]["task_id"], TASK);

    // A node's returned stake shows on the node.
    let node = harness.nodes[1].address();
    harness
        .apply(&[
            VerinferEvent::NodeExited {
                node,
                stake_returned: STAKE,
                reason: verinfer_abi::ExitReason::BelowMinStake,
            },
            VerinferEvent::BalanceCredited {
                account: node,
                task_id: 0,
                reason: CreditReason::StakeReturned,
                amount: STAKE,
            },
        ])
        .await;
    let (_, nodes) = harness.send_json("GET", "/v1/nodes", "").await;
    assert_eq!(nodes["nodes"][1]["claimable"], STAKE.to_string());
    assert_eq!(nodes["nodes"][1]["state"], "none");
    let (_, account) = harness
        .send_json("GET", &format!("/v1/accounts/{node}"), "")
        .await;
    assert_eq!(account["credits"][0]["task_id"], serde_json::Value::Null);
    let (status, body) = harness.send_json("GET", "/v1/accounts/0xnothex", "").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "bad_request")
    );
}

// ------------------------------------------------------------------ sampled validation

/// `GET /v1/tasks/{id}`.
async fn task_json(harness: &Harness, task_id: u64) -> serde_json::Value {
    let (status, task) = harness
        .send_json("GET", &format!("/v1/tasks/{task_id}"), "")
        .await;
    assert_eq!(status, StatusCode::OK, "{task}");
    task
}

/// `GET /v1/nodes`: each node's (state, current task).
async fn node_states(harness: &Harness) -> Vec<(String, serde_json::Value)> {
    let (_, nodes) = harness.send_json("GET", "/v1/nodes", "").await;
    nodes["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["state"].as_str().unwrap().to_owned(),
                n["task_id"].clone(),
            )
        })
        .collect()
}

fn summary(task: &serde_json::Value) -> &str {
    task["validation"]["summary"].as_str().unwrap()
}

#[tokio::test]
async fn full_tasks_say_they_are_checked_by_three_nodes() {
    let harness = Harness::new().await;
    harness.validated_image_task(TASK, &pngs()).await;
    let task = task_json(&harness, TASK).await;
    assert_eq!(task["validation"]["mode"], "full", "{task}");
    assert_eq!(task["validation"]["checked"], true);
    assert_eq!(task["validation"]["sampling_bps"], serde_json::Value::Null);
    assert_eq!(summary(&task), "checked by three nodes (full validation)");
}

#[tokio::test]
async fn sampled_task_accepted_unchecked_says_so() {
    let harness = Harness::new().await;
    harness.activate_params(1_000).await;
    let pngs = pngs();
    let phashes: Vec<u64> = pngs.iter().map(|p| phash(p)).collect();
    harness
        .start_sampled_task(TASK, TaskKind::Image, 3, B256::repeat_byte(1), 2_000)
        .await;

    // The first node committed: the hash of the next block decides.
    let task = task_json(&harness, TASK).await;
    assert_eq!(task["status"], "awaiting_sample", "{task}");
    assert_eq!(task["nodes"].as_array().unwrap().len(), 1, "{task}");
    assert_eq!(task["committed_mask"], 1);
    assert_eq!(task["reveal_deadline"], 1_300);
    // Fee 10 tokens against the sampled minimum of 3 images, 13/80 FEE x 11,000/30,000
    // (1.79 tokens): at least 4, less than 8 times it.
    assert_eq!(task["fee_level"], 2, "{task}");
    let validation = &task["validation"];
    assert_eq!(
        (
            &validation["mode"],
            &validation["checked"],
            &validation["sampling_bps"],
            &validation["sample_block"],
        ),
        (
            &"sampled".into(),
            &serde_json::Value::Null,
            &SAMPLING_BPS.into(),
            &SAMPLE_BLOCK.into()
        ),
        "{task}"
    );
    assert!(
        summary(&task).contains(&format!("block {SAMPLE_BLOCK}")),
        "{task}"
    );
    assert_eq!(
        node_states(&harness).await,
        [
            ("busy".to_owned(), TASK.into()),
            ("available".to_owned(), serde_json::Value::Null),
            ("available".to_owned(), serde_json::Value::Null),
        ]
    );

    // Not chosen: the first node's reveal runs the draw and settles at once, paid alone.
    let first = harness.nodes[0].address();
    let reward = SAMPLED_FEE * 95 / 100;
    harness
        .apply(&[
            VerinferEvent::SampleDecided {
                task_id: TASK,
                checked: false,
                sample_block: SAMPLE_BLOCK,
            },
            VerinferEvent::ImageResultRevealed {
                task_id: TASK,
                node: first,
                phashes: phashes.clone(),
            },
            VerinferEvent::TaskSettled {
                task_id: TASK,
                outcome: TaskStatus::Validated,
                agreeing_mask: 1,
                distances: Vec::new(),
                threshold: 10,
                reward_per_node: reward,
            },
            VerinferEvent::NodeRewarded {
                node: first,
                task_id: TASK,
                amount: reward,
            },
        ])
        .await;
    let task = task_json(&harness, TASK).await;
    assert_eq!(task["status"], "validated", "{task}");
    assert_eq!(task["validation"]["checked"], false, "{task}");
    assert!(task["validation"]["decided_block"].is_u64(), "{task}");
    assert_eq!(task["validation"]["checkers"], serde_json::json!([]));
    assert_eq!(
        summary(&task),
        "sampled at p = 5%: accepted unchecked (one node's result, not compared)"
    );
    assert_eq!(task["settlement"]["agreeing_mask"], 1);
    assert_eq!(task["settlement"]["distances"], serde_json::json!([]));
    assert_eq!(task["nodes"][0]["agreed"], true);
    let states = node_states(&harness).await;
    assert_eq!(states[0], ("available".to_owned(), serde_json::Value::Null));

    // The first node's upload is its result; nobody else was selected.
    let payload = UploadPayload::image(pngs);
    let request = signed(&harness.nodes[0], TASK, &payload).await;
    let (status, body) = harness
        .send_json("POST", "/v1/tasks/1/results", json(&request))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = harness.send_json("GET", "/v1/tasks/1/results", "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"].as_array().unwrap().len(), 1);
    assert!(body["pending_nodes"].as_array().unwrap().is_empty());
    assert_eq!(body["validation"]["checked"], false, "{body}");
    let request = signed(&harness.nodes[1], TASK, &payload).await;
    assert_rejected(
        &harness,
        "POST",
        "/v1/tasks/1/results",
        json(&request),
        StatusCode::FORBIDDEN,
        "not_selected",
    )
    .await;
}

#[tokio::test]
async fn sampled_task_checked_by_three_nodes_says_so() {
    use alloy::sol_types::SolEvent;
    use alloy_primitives::U256;
    use verinfer_abi::Verinfer;
    let harness = Harness::new().await;
    harness.activate_params(1_000).await;
    harness
        .start_sampled_task(TASK, TaskKind::Text, 0, B256::repeat_byte(1), 2_000)
        .await;

    // Chosen: the task waits for two checkers, with a deadline of its own.
    harness
        .apply_logs(
            Some(2_500),
            &[
                Verinfer::SampleDecided {
                    taskId: U256::from(TASK),
                    checked: true,
                    sampleBlock: U256::from(SAMPLE_BLOCK),
                }
                .encode_log_data(),
                Verinfer::TaskQueued {
                    taskId: U256::from(TASK),
                    queueKey: B256::repeat_byte(0xc4),
                }
                .encode_log_data(),
            ],
        )
        .await;
    let task = task_json(&harness, TASK).await;
    assert_eq!(task["status"], "check_queued", "{task}");
    assert_eq!(task["expires_at"], 2_500 + 3_600);
    assert_eq!(task["queue_key"], format!("{}", B256::repeat_byte(0xc4)));
    assert_eq!(task["validation"]["checked"], true, "{task}");
    assert!(
        summary(&task).contains("waiting for two checker nodes"),
        "{task}"
    );

    // The checkers are drawn into slots 1 and 2; the first node keeps its commitment.
    let checkers = [harness.nodes[1].address(), harness.nodes[2].address()];
    harness
        .apply(&[VerinferEvent::CheckStarted {
            task_id: TASK,
            checkers,
            commit_deadline: 3_000,
            reveal_deadline: 3_300,
            seed_block: 90,
        }])
        .await;
    let task = task_json(&harness, TASK).await;
    assert_eq!(task["status"], "committing", "{task}");
    assert_eq!(task["nodes"].as_array().unwrap().len(), 3);
    assert!(!task["nodes"][0]["commitment"].is_null(), "{task}");
    assert_eq!(task["nodes"][2]["commitment"], serde_json::Value::Null);
    assert_eq!(task["queue_key"], serde_json::Value::Null);
    assert_eq!(
        (
            &task["commit_deadline"],
            &task["validation"]["check_seed_block"]
        ),
        (&3_000.into(), &90.into())
    );
    assert_eq!(
        task["validation"]["checkers"],
        serde_json::json!([format!("{:#x}", checkers[0]), format!("{:#x}", checkers[1])])
    );
    assert!(
        node_states(&harness)
            .await
            .iter()
            .all(|state| state == &("busy".to_owned(), TASK.into()))
    );

    // The checkers commit, all three reveal, the majority rule of full tasks settles it.
    let commits: Vec<_> = checkers
        .iter()
        .map(|&node| VerinferEvent::ResultCommitted {
            task_id: TASK,
            node,
            commitment: B256::repeat_byte(8),
        })
        .collect();
    harness.apply(&commits).await;
    harness
        .apply(&[VerinferEvent::RevealPhaseOpened {
            task_id: TASK,
            reveal_deadline: 3_100,
        }])
        .await;
    let output = TextOutput {
        text: "checked".into(),
        token_ids: vec![4, 2],
        finish_reason: FinishReason::Stop,
    };
    for slot in 0..3 {
        harness.reveal_text(TASK, slot, text_digest(&output)).await;
    }
    harness.settle(TASK, TaskStatus::Validated, 0b111, 1).await;
    let task = task_json(&harness, TASK).await;
    assert_eq!(task["status"], "validated", "{task}");
    assert_eq!(
        (
            task["committed_mask"].as_u64(),
            task["revealed_mask"].as_u64()
        ),
        (Some(7), Some(7))
    );
    assert_eq!(task["validation"]["checked"], true);
    assert_eq!(
        summary(&task),
        "sampled at p = 5%: checked by three nodes (first node and two checkers)"
    );
    assert!(
        node_states(&harness)
            .await
            .iter()
            .all(|state| state == &("available".to_owned(), serde_json::Value::Null))
    );
    let request = signed(&harness.nodes[2], TASK, &UploadPayload::text(output)).await;
    let (status, body) = harness
        .send_json("POST", "/v1/tasks/1/results", json(&request))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn a_check_without_checkers_expires_and_releases_the_first_node() {
    let harness = Harness::new().await;
    harness.activate_params(1_000).await;
    harness
        .start_sampled_task(TASK, TaskKind::Image, 1, B256::repeat_byte(1), 2_000)
        .await;
    harness
        .apply(&[
            VerinferEvent::SampleDecided {
                task_id: TASK,
                checked: true,
                sample_block: SAMPLE_BLOCK,
            },
            VerinferEvent::TaskQueued {
                task_id: TASK,
                queue_key: B256::repeat_byte(0xc4),
            },
        ])
        .await;
    assert_eq!(node_states(&harness).await[0].0, "busy");
    harness
        .apply(&[
            VerinferEvent::TaskExpired { task_id: TASK },
            VerinferEvent::BalanceCredited {
                account: alloy_primitives::Address::repeat_byte(0xcc),
                task_id: TASK,
                reason: verinfer_abi::CreditReason::FeeRefunded,
                amount: SAMPLED_FEE,
            },
        ])
        .await;
    let task = task_json(&harness, TASK).await;
    assert_eq!(task["status"], "expired", "{task}");
    assert_eq!(task["validation"]["checked"], true);
    assert!(summary(&task).contains("no two checkers"), "{task}");
    assert_eq!(
        node_states(&harness).await[0],
        ("available".to_owned(), serde_json::Value::Null),
        "the first node is released, unpaid"
    );
    assert_eq!(task["credits"][0]["reason"], "fee_refunded");
}

#[tokio::test]
async fn rows_written_before_sampling_read_as_full_tasks() {
    // A database at schema version 2 (before sampled validation) holding a validated task.
    let nodes = [1u8, 2, 3].map(alloy_primitives::Address::repeat_byte);
    let (_dir, url) = old_database_with_task(2, nodes, 0b111, "[0,1,2]").await;
    // The relayer's own connect migrates it to the current schema.
    let store = verinfer_relayer::store::Store::connect(&url).await.unwrap();
    let task = store.task(7).await.unwrap().unwrap();
    assert_eq!(task.chain.mode, verinfer_abi::ValidationMode::Full);
    assert_eq!(
        (
            task.chain.checked,
            task.chain.sample_block,
            task.sampling_bps
        ),
        (false, 0, None)
    );
    assert_eq!(task.checked_by_three(), Some(true));
    let view = verinfer_relayer::api::types::task_view(
        &task,
        &[],
        &[],
        false,
        &verinfer_relayer::api::types::TaskContext::default(),
    );
    let validation = view.validation.unwrap();
    assert_eq!(
        (validation.mode, validation.checked),
        (verinfer_abi::ValidationMode::Full, Some(true))
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let harness = Harness::new().await;
    let (status, body) = harness.send_json("GET", "/v2/nothing", "").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let (status, body) = harness.send_json("DELETE", "/v1/args", "").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
    let (status, body) = harness
        .send_json("GET", &format!("/v1/blobs/{}", B256::ZERO), "")
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "unknown_blob")
    );
}

#[tokio::test]
async fn healthz_reports_the_database() {
    let harness = Harness::new().await;
    let (status, body) = harness.send_json("GET", "/healthz", "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["database"].as_str(), body["indexer"].as_str()),
        (Some("ok"), Some("disabled"))
    );
    harness.store().pool().close().await;
    let (status, body) = harness.send_json("GET", "/healthz", "").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "unhealthy");
}

#[tokio::test]
async fn client_over_a_real_loopback_listener() {
    let harness = Harness::new().await;
    let pngs = pngs();
    harness.validated_image_task(TASK, &pngs).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(axum::serve(listener, harness.router()).into_future());
    let client = verinfer_wire::RelayerClient::new(format!("http://{addr}/").parse().unwrap());

    let uploaded = client.upload_args(valid_image_args()).await.unwrap();
    assert_eq!(
        client.args(uploaded.args_hash).await.unwrap().as_ref(),
        valid_image_args().as_slice()
    );
    let request = signed(&harness.nodes[2], TASK, &UploadPayload::image(pngs.clone())).await;
    let accepted = client.upload_result(TASK, &request).await.unwrap();
    assert!(accepted.created);
    let results = client.results(TASK, false).await.unwrap();
    assert_eq!(results.results.len(), 1);
    let first = &results.results[0].images.as_ref().unwrap()[0];
    assert_eq!(
        client.blob(first.keccak256).await.unwrap().as_ref(),
        pngs[0].as_slice()
    );

    let forged = signed(&harness.outsider, TASK, &UploadPayload::image(pngs)).await;
    let err = client.upload_result(TASK, &forged).await.unwrap_err();
    assert_eq!(
        err.code(),
        Some(verinfer_wire::ErrorCode::NotSelected),
        "{err}"
    );
    let err = client
        .task_args(TASK, B256::repeat_byte(0x42))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(verinfer_wire::ErrorCode::UnknownArgs),
        "{err}"
    );
    server.abort();
}
