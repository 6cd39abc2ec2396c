//! Every error of the gateway as an HTTP client sees it (curl-style: status, OpenAI's error shape,
//! headers), against a real chain and relayer without nodes: 401, 404, 400 (before any
//! transaction: the gateway's nonce and balance do not move), 429 over budget and 429 busy, 504
//! when no node takes the task, 502 when the chain is gone; and the metrics that count them.

use std::time::Duration;

use alloy::{primitives::U256, providers::Provider};
use serde_json::{Value, json};
use verinfer_abi::{IERC20, ValidationMode};
use verinfer_devchain::{
    AnvilOptions, Chain, Deploy, Services, TOKEN, TinyModels, default_init_params, relayer_config,
};
use verinfer_gateway::{
    Gateway, GatewayConfig, api_key_sha256,
    config::{ApiKeyConfig, Budget, ModelConfig, ModelKind, Tokens},
};
use verinfer_task::{Precision, Scheduler};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const RICH: &str = "vk-rich-test-key";
const POOR: &str = "vk-poor-test-key";
const GPU: &str = "gateway-test-gpu";

fn tokens(text: &str) -> Tokens {
    Tokens(text.parse().unwrap())
}

fn model(id: &str, kind: ModelKind, models: &TinyModels) -> ModelConfig {
    let (model_ref, tokenizer_dir, gpu_model) = match kind {
        ModelKind::Text => (
            &models.llama,
            Some(models.dir.join("tiny-llama")),
            Some(GPU.to_owned()),
        ),
        ModelKind::Image => (&models.sd, None, None),
    };
    ModelConfig {
        id: id.to_owned(),
        kind,
        model_dir: None,
        tokenizer_dir,
        name: Some(model_ref.name.clone()),
        digest: Some(model_ref.digest.clone()),
        gpu_model,
        min_vram_mib: 0,
        validation: ValidationMode::Full,
        fee_per_task: tokens("1"),
        fee_per_token: Tokens::zero(),
        fee_per_image: tokens("1"),
        max_tokens: 8,
        temperature: 0.0,
        width: 64,
        height: 64,
        steps: 2,
        guidance_scale: 7.5,
        scheduler: Scheduler::Ddim,
        precision: Precision::F32,
    }
}

async fn error_of(response: reqwest::Response) -> Result<(u16, Value), Box<dyn std::error::Error>> {
    let status = response.status().as_u16();
    let body: Value = response.json().await?;
    let error = body
        .get("error")
        .cloned()
        .ok_or_else(|| format!("no `error` object in {body}"))?;
    for field in ["message", "type", "param", "code"] {
        assert!(error.get(field).is_some(), "error lacks `{field}`: {error}");
    }
    Ok((status, error))
}

/// POSTs `body` as `key` and reads the error it must answer.
async fn post(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    body: &Value,
) -> Result<(u16, Value), Box<dyn std::error::Error>> {
    error_of(http.post(url).bearer_auth(key).json(body).send().await?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_has_openai_shape_and_status_and_refusals_cost_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let chain = Chain::start(
        &AnvilOptions::default(),
        Deploy::Bindings {
            params: default_init_params(),
            treasury: 1,
        },
    )
    .await?;
    chain.add_gpu_models([(GPU, 8192u32)]).await?;
    let account = chain.address(2)?;
    chain.fund([(account, U256::from(100 * TOKEN))]).await?;
    let deployment_path = dir.path().join("deployment.json");
    std::fs::write(&deployment_path, serde_json::to_vec(chain.deployment())?)?;
    let mut services = Services::new();
    let relayer_url = services
        .start_relayer(&relayer_config(
            &chain.rpc_url(),
            chain.deployment(),
            &dir.path().join("relayer"),
            0,
        ))
        .await?;
    let models_dir = dir.path().join("models");
    let models = tokio::task::spawn_blocking(move || TinyModels::make(&models_dir, 0)).await??;

    let config = GatewayConfig::validated(GatewayConfig {
        listen: ([127, 0, 0, 1], 0).into(),
        rpc_url: chain.rpc_url(),
        relayer_url,
        deployment: deployment_path,
        state_file: dir.path().join("gateway-state.json"),
        request_timeout_secs: 4,
        max_in_flight: 1,
        poll_interval_ms: 100,
        models: vec![
            model("tiny-llama", ModelKind::Text, &models),
            model("tiny-sd", ModelKind::Image, &models),
        ],
        api_keys: vec![
            ApiKeyConfig {
                name: "rich".into(),
                sha256: api_key_sha256(RICH),
                budget: Budget::Total(tokens("50")),
            },
            ApiKeyConfig {
                name: "poor".into(),
                sha256: api_key_sha256(POOR),
                budget: Budget::PerDay(tokens("0.5")),
            },
        ],
        ..GatewayConfig::default()
    })?;
    let gateway = Gateway::new(&config, chain.key(2)?).await?;
    let listener = gateway.bind().await?;
    let base = format!("http://{}", listener.local_addr()?);
    services.run_service("gateway", move |stop| gateway.serve(listener, stop));

    let http = reqwest::Client::new();
    let chat = format!("{base}/v1/chat/completions");
    let images = format!("{base}/v1/images/generations");
    let good_chat = json!({"model": "tiny-llama", "messages": [{"role": "user", "content": "hi"}]});
    let nonce = || async { chain.provider().get_transaction_count(account).await };
    let token = IERC20::new(chain.deployment().staking_token, chain.provider().clone());
    let balance = || async { token.balanceOf(account).call().await };
    let (nonce_before, balance_before) = (nonce().await?, balance().await?);

    // 401: no key, a wrong key, a malformed header; the key is never echoed.
    let response = http.get(format!("{base}/v1/models")).send().await?;
    assert_eq!(
        response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer")
    );
    let (status, error) = error_of(response).await?;
    assert_eq!(
        (status, error["code"].as_str()),
        (401, Some("invalid_api_key"))
    );
    for header in ["Bearer vk-wrong-secret", "Basic vk-wrong-secret"] {
        let response = http
            .post(&chat)
            .header("authorization", header)
            .json(&good_chat)
            .send()
            .await?;
        let (status, error) = error_of(response).await?;
        assert_eq!(status, 401, "{error}");
        assert!(!error.to_string().contains("wrong-secret"), "{error}");
    }

    // The model list.
    let models_list: Value = http
        .get(format!("{base}/v1/models"))
        .bearer_auth(RICH)
        .send()
        .await?
        .json()
        .await?;
    let ids: Vec<_> = models_list["data"]
        .as_array()
        .ok_or("no data")?
        .iter()
        .map(|m| m["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(ids, ["tiny-llama", "tiny-sd"]);
    assert_eq!(models_list["data"][0]["verinfer"]["gpu_model"], GPU);
    assert_eq!(models_list["data"][1]["verinfer"]["kind"], "image");

    // 404: an unknown model (also on GET /v1/models/{id}) and an unknown route.
    let (status, error) = post(
        &http,
        &chat,
        RICH,
        &json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await?;
    assert_eq!(
        (status, error["code"].as_str()),
        (404, Some("model_not_found"))
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("tiny-llama"),
        "{error}"
    );
    let (status, _) = error_of(
        http.get(format!("{base}/v1/models/gpt-4o"))
            .bearer_auth(RICH)
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, 404);
    let (status, _) = error_of(
        http.get(format!("{base}/v1/embeddings"))
            .bearer_auth(RICH)
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, 404);

    // 400: each names the field at fault.
    let bad_requests = [
        (
            &chat,
            json!({"model": "tiny-llama", "messages": []}),
            "messages",
        ),
        (
            &chat,
            json!({"model": "tiny-llama", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}),
            "max_tokens",
        ),
        (
            &chat,
            json!({"model": "tiny-llama", "messages": [{"role": "user", "content": "hi"}], "temperature": 3}),
            "temperature",
        ),
        (
            &chat,
            json!({"model": "tiny-llama", "messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function"}]}),
            "tools",
        ),
        (
            &chat,
            json!({"model": "tiny-llama", "messages": [{"role": "user", "content": "hi"}], "n": 2}),
            "n",
        ),
        (
            &chat,
            json!({"model": "tiny-llama", "messages": [{"role": "tool", "content": "hi"}]}),
            "messages[0].role",
        ),
        (
            &chat,
            json!({"model": "tiny-llama", "messages": [{"role": "user", "content": "hi"}], "seed": -1}),
            "seed",
        ),
        (
            &chat,
            json!({"model": "tiny-sd", "messages": [{"role": "user", "content": "hi"}]}),
            "model",
        ),
        (
            &images,
            json!({"model": "tiny-sd", "prompt": "a cat", "size": "65x64"}),
            "size",
        ),
        (
            &images,
            json!({"model": "tiny-sd", "prompt": "a cat", "size": "big"}),
            "size",
        ),
        (
            &images,
            json!({"model": "tiny-sd", "prompt": "a cat", "n": 17}),
            "n",
        ),
        (
            &images,
            json!({"model": "tiny-sd", "prompt": "a cat", "response_format": "png"}),
            "response_format",
        ),
        (
            &images,
            json!({"model": "tiny-sd", "prompt": "a cat", "steps": 0}),
            "steps",
        ),
    ];
    for (url, body, param) in bad_requests {
        let (status, error) = post(&http, url, RICH, &body).await?;
        assert_eq!(status, 400, "{body}: {error}");
        assert_eq!(error["type"], "invalid_request_error", "{body}: {error}");
        assert_eq!(error["param"].as_str(), Some(param), "{body}: {error}");
    }
    let (status, error) = error_of(
        http.post(&chat)
            .bearer_auth(RICH)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, 400, "{error}");

    // 429 over budget: the poor key's 0.5 tokens a day do not cover a 1-token fee.
    let (status, error) = post(&http, &chat, POOR, &good_chat).await?;
    assert_eq!(
        (status, error["code"].as_str()),
        (429, Some("insufficient_quota"))
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("0.5"),
        "{error}"
    );

    // Nothing above sent a transaction or spent a token.
    assert_eq!(nonce().await?, nonce_before);
    assert_eq!(balance().await?, balance_before);

    // 504: no node takes the task within the 4 s request timeout. Meanwhile a second request
    // finds the one place in flight taken: 429 with Retry-After.
    let slow = {
        let (http, images) = (http.clone(), images.clone());
        tokio::spawn(async move {
            http.post(&images)
                .bearer_auth(RICH)
                .json(&json!({"model": "tiny-sd", "prompt": "a lighthouse", "response_format": "b64_json"}))
                .send()
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let busy = http
        .post(&chat)
        .bearer_auth(RICH)
        .json(&good_chat)
        .send()
        .await?;
    assert_eq!(
        busy.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let (status, error) = error_of(busy).await?;
    assert_eq!(
        (status, error["code"].as_str()),
        (429, Some("rate_limit_exceeded"))
    );
    let (status, error) = error_of(slow.await??).await?;
    assert_eq!(
        (status, error["code"].as_str()),
        (504, Some("timeout")),
        "{error}"
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("was not validated within"),
        "{error}"
    );
    assert!(nonce().await? > nonce_before, "the 504's task was created");
    // Its fee: 1 token per task plus 1 per image.
    assert_eq!(
        balance().await?,
        balance_before - U256::from(2 * TOKEN),
        "its fee was paid"
    );

    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    for line in [
        "verinfer_gateway_tasks_total{kind=\"image\",outcome=\"timeout\"} 1",
        "verinfer_gateway_requests_total{route=\"/v1/chat/completions\",status=\"401\"} 2",
        "verinfer_gateway_requests_total{route=\"/v1/chat/completions\",status=\"429\"} 2",
        "verinfer_gateway_requests_total{route=\"/v1/images/generations\",status=\"504\"} 1",
        "verinfer_gateway_fees_spent_tokens_total{key=\"rich\"} 2",
        "verinfer_gateway_requests_in_flight 0",
        "verinfer_gateway_requests_in_flight_max 1",
    ] {
        assert!(metrics.contains(line), "metrics lack {line}:\n{metrics}");
    }
    assert!(!metrics.contains(RICH) && !metrics.contains(POOR));

    // A streamed request that fails after its task was created: the stream (already 200) ends
    // with an event holding the error, which the SDKs raise.
    let response = http
        .post(&chat)
        .bearer_auth(RICH)
        .json(&json!({"model": "tiny-llama", "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    let events = response.text().await?;
    let error_event = events
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .find_map(|data| serde_json::from_str::<Value>(data).ok())
        .ok_or_else(|| format!("no data event in {events:?}"))?;
    assert_eq!(error_event["error"]["code"], "timeout", "{events}");
    assert!(!events.contains("[DONE]"), "{events}");

    // 502: the chain is gone.
    chain.stop().await;
    let (status, error) = post(&http, &chat, RICH, &good_chat).await?;
    assert_eq!(
        (status, error["code"].as_str()),
        (502, Some("upstream_error")),
        "{error}"
    );

    services.stop(Duration::from_secs(5)).await;
    Ok(())
}
