//! The devnet's OpenAI-compatible gateway, and its benchmark (`--gateway-requests`).

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use alloy::signers::local::PrivateKeySigner;
use eyre::{WrapErr as _, bail, eyre};
use url::Url;
use verinfer_abi::ValidationMode;
use verinfer_devchain::{Services, TinyModels};
use verinfer_gateway::{
    Gateway, GatewayConfig, api_key_sha256,
    config::{ApiKeyConfig, Budget, ModelConfig, ModelKind, Tokens},
    new_api_key,
};
use verinfer_task::{Precision, Scheduler};

use super::fleet::{TEXT_GPU_MODEL, image_min_vram_mib};

/// The devnet's gateway: where it serves and the API key it made.
pub(crate) struct DevnetGateway {
    /// `http://127.0.0.1:PORT/v1`, the SDKs' `base_url`.
    pub(crate) base_url: Url,
    /// A key with a budget of [`API_KEY_BUDGET`] tokens per day.
    pub(crate) api_key: String,
}

/// The devnet key's budget, tokens per day.
const API_KEY_BUDGET: &str = "800";
/// Requests the devnet's gateway serves at once (the benchmark's `--gateway-concurrency` up to
/// this is served; more get 429).
const MAX_IN_FLIGHT: usize = 256;

fn tokens(text: &str) -> Tokens {
    Tokens(text.parse().expect("a static token amount"))
}

/// The gateway's configuration on the devnet: `tiny-llama` (text, on [`TEXT_GPU_MODEL`], full
/// validation) and `tiny-sd` (64×64, 4 steps), one API key.
fn config(
    rpc_url: &Url,
    relayer_url: &Url,
    deployment: &Path,
    models: &TinyModels,
    data_dir: &Path,
    port: u16,
    api_key: &str,
) -> GatewayConfig {
    let text = ModelConfig {
        id: "tiny-llama".to_owned(),
        kind: ModelKind::Text,
        model_dir: None,
        tokenizer_dir: Some(models.dir.join("tiny-llama")),
        name: Some(models.llama.name.clone()),
        digest: Some(models.llama.digest.clone()),
        gpu_model: Some(TEXT_GPU_MODEL.to_owned()),
        min_vram_mib: 0,
        validation: ValidationMode::Full,
        fee_per_task: tokens("1"),
        fee_per_token: Tokens::zero(),
        fee_per_image: Tokens::zero(),
        max_tokens: 32,
        temperature: 0.0,
        width: 64,
        height: 64,
        steps: 4,
        guidance_scale: 7.5,
        scheduler: Scheduler::Ddim,
        precision: Precision::F32,
    };
    let image = ModelConfig {
        id: "tiny-sd".to_owned(),
        kind: ModelKind::Image,
        tokenizer_dir: None,
        name: Some(models.sd.name.clone()),
        digest: Some(models.sd.digest.clone()),
        gpu_model: None,
        min_vram_mib: image_min_vram_mib(false),
        fee_per_task: Tokens::zero(),
        fee_per_image: tokens("1"),
        ..text.clone()
    };
    GatewayConfig {
        listen: ([127, 0, 0, 1], port).into(),
        rpc_url: rpc_url.clone(),
        relayer_url: relayer_url.clone(),
        deployment: deployment.to_owned(),
        state_file: data_dir.join("gateway").join("state.json"),
        request_timeout_secs: 300,
        max_in_flight: MAX_IN_FLIGHT,
        poll_interval_ms: 200,
        models: vec![text, image],
        api_keys: vec![ApiKeyConfig {
            name: "devnet".to_owned(),
            sha256: api_key_sha256(api_key),
            budget: Budget::PerDay(tokens(API_KEY_BUDGET)),
        }],
        ..GatewayConfig::default()
    }
}

/// Starts the gateway paying from `key` (its own account: the demo's creator sends its own
/// transactions at the same time).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn start(
    services: &mut Services,
    rpc_url: &Url,
    relayer_url: &Url,
    deployment: &Path,
    models: &TinyModels,
    data_dir: &Path,
    port: u16,
    key: PrivateKeySigner,
) -> eyre::Result<DevnetGateway> {
    let api_key = new_api_key();
    let config = GatewayConfig::validated(config(
        rpc_url,
        relayer_url,
        deployment,
        models,
        data_dir,
        port,
        &api_key,
    ))?;
    let gateway = Gateway::new(&config, key)
        .await
        .wrap_err("cannot start the gateway")?;
    let listener = gateway.bind().await.map_err(|error| {
        eyre!("{error}: choose another port with --gateway-port (0 picks a free one)")
    })?;
    let addr = listener.local_addr()?;
    services.run_service("gateway", move |stop| gateway.serve(listener, stop));
    Ok(DevnetGateway {
        base_url: Url::parse(&format!("http://{addr}/v1"))?,
        api_key,
    })
}

/// What one benchmark request measured.
struct Sample {
    /// Request to answer, as the client saw it.
    total: Duration,
    /// The task's own time, as the gateway reports it (`verinfer.timing_ms.network`).
    network: Duration,
}

/// `--gateway-requests N`: N chat completions through the gateway, `concurrency` at a time;
/// prints p50/p99 of the whole request, of the task's own time, and of the gateway's overhead
/// (their difference), and the most requests the gateway had in flight.
pub(crate) async fn bench(
    gateway: &DevnetGateway,
    requests: u32,
    concurrency: u32,
) -> eyre::Result<()> {
    let http = reqwest::Client::new();
    let url = Url::parse(&format!("{}/chat/completions", gateway.base_url))?;
    let semaphore = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1) as usize));
    let started = Instant::now();
    let mut running = tokio::task::JoinSet::new();
    for index in 0..requests {
        let (http, url, key, semaphore) = (
            http.clone(),
            url.clone(),
            gateway.api_key.clone(),
            semaphore.clone(),
        );
        running.spawn(async move {
            let _permit = semaphore.acquire_owned().await?;
            let body = serde_json::json!({
                "model": "tiny-llama",
                "messages": [{"role": "user", "content": format!("Benchmark request {index}: tell a story.")}],
                "max_tokens": 8,
                "temperature": 0,
                "seed": index,
            });
            let sent = Instant::now();
            let response = http.post(url).bearer_auth(key).json(&body).send().await?;
            let status = response.status();
            let answer: serde_json::Value = response.json().await?;
            let total = sent.elapsed();
            if !status.is_success() {
                bail!("request {index}: {status}: {answer}");
            }
            let network = answer["verinfer"]["timing_ms"]["network"]
                .as_u64()
                .ok_or_else(|| eyre!("request {index}: no verinfer.timing_ms.network"))?;
            Ok(Sample {
                total,
                network: Duration::from_millis(network),
            })
        });
    }
    let mut samples = Vec::new();
    while let Some(joined) = running.join_next().await {
        samples.push(joined??);
    }
    let elapsed = started.elapsed();
    let metrics = http
        .get(format!("{}metrics", gateway.base_url.join("/")?))
        .send()
        .await?
        .text()
        .await?;
    let max_in_flight = metrics
        .lines()
        .find_map(|line| line.strip_prefix("verinfer_gateway_requests_in_flight_max "))
        .unwrap_or("?");
    let percentile = |values: &mut Vec<Duration>, p: f64| -> Duration {
        values.sort();
        let rank = ((p * values.len() as f64).ceil() as usize).clamp(1, values.len());
        values[rank - 1]
    };
    let mut totals: Vec<_> = samples.iter().map(|s| s.total).collect();
    let mut networks: Vec<_> = samples.iter().map(|s| s.network).collect();
    let mut overheads: Vec<_> = samples
        .iter()
        .map(|s| s.total.saturating_sub(s.network))
        .collect();
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    println!(
        "gateway benchmark: {} chat completions (tiny-llama, 8 tokens, greedy), {} at a time, all validated, in {:.1} s",
        samples.len(),
        concurrency,
        elapsed.as_secs_f64()
    );
    println!(
        "  whole request  p50 {}  p99 {}",
        ms(percentile(&mut totals, 0.5)),
        ms(percentile(&mut totals, 0.99))
    );
    println!(
        "  task (create to verified result)  p50 {}  p99 {}",
        ms(percentile(&mut networks, 0.5)),
        ms(percentile(&mut networks, 0.99))
    );
    println!(
        "  gateway overhead (request minus task)  p50 {}  p99 {}",
        ms(percentile(&mut overheads, 0.5)),
        ms(percentile(&mut overheads, 0.99))
    );
    println!("  most requests in flight at once: {max_in_flight}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_devnet_configuration_is_valid() {
        let models = TinyModels {
            dir: "/models".into(),
            sd: verinfer_task::ModelRef {
                name: "tiny-sd".into(),
                digest: format!("sha256:{}", "1".repeat(64)),
            },
            llama: verinfer_task::ModelRef {
                name: "tiny-llama".into(),
                digest: format!("sha256:{}", "2".repeat(64)),
            },
        };
        let url = Url::parse("http://127.0.0.1:1/").unwrap();
        let config = config(
            &url,
            &url,
            Path::new("d.json"),
            &models,
            Path::new("/data"),
            0,
            "vk-x",
        );
        GatewayConfig::validated(config).unwrap();
    }
}
