//! The kit itself on a real anvil: a chain deployed through the bindings or the deploy script,
//! funded accounts, GPU models registered for the nodes, the drawer, the relayer in-process,
//! mining modes, a taken port, and anvil gone once stopped.
//!
//! Needs the npm-installed anvil and forge (`npm ci`).

use std::{error::Error, net::TcpListener, time::Duration};

use alloy::{
    primitives::{U256, aliases::U96, keccak256},
    providers::Provider,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use verinfer_abi::{IERC20, TaskKind, TaskStatus, padded_gas_limit};
use verinfer_devchain::{
    Anvil, AnvilOptions, Chain, DEVNET_MIN_IMAGE_FEE, DEVNET_MIN_TASK_FEE, Deploy, NodeEnv,
    ScriptParams, Services, TOKEN, default_init_params, register_declared_gpu_models,
    relayer_config, repo_root,
};
use verinfer_node::IdentityOverride;

type TestResult = Result<(), Box<dyn Error>>;

/// The status line of `GET <path>` on `addr` (`host:port`).
async fn http_status(addr: &str, path: &str) -> Result<String, Box<dyn Error>> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response.lines().next().unwrap_or_default().to_owned())
}

/// Whether `pid` is a live process (zombies count as gone).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(") ")
            .next()
            .is_some_and(|rest| !rest.starts_with('Z'))
    })
}

#[tokio::test]
async fn a_chain_funds_accounts_serves_a_relayer_and_stops() -> TestResult {
    let deploy = Deploy::Bindings {
        params: default_init_params(),
        treasury: 1,
    };
    let chain = Chain::start(&AnvilOptions::default(), deploy).await?;
    let deployment = *chain.deployment();
    assert_eq!(
        (deployment.owner, deployment.treasury, deployment.mock_token),
        (chain.address(0)?, chain.address(1)?, true)
    );
    assert!(chain.deployment_path().is_none());

    let (a, b) = (chain.address(3)?, chain.address(4)?);
    chain
        .fund([(a, U256::from(5 * TOKEN)), (b, U256::from(7 * TOKEN))])
        .await?;
    let token = IERC20::new(deployment.staking_token, chain.provider());
    assert_eq!(token.balanceOf(a).call().await?, U256::from(5 * TOKEN));
    assert_eq!(token.balanceOf(b).call().await?, U256::from(7 * TOKEN));

    let dir = tempfile::tempdir()?;
    let mut services = Services::new();
    let config = relayer_config(&chain.rpc_url(), &deployment, dir.path(), 0);
    let url = services.start_relayer(&config).await?;
    let addr = format!(
        "{}:{}",
        url.host_str().unwrap_or_default(),
        url.port().unwrap_or_default()
    );
    // Healthy once its indexer has caught up with the chain.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = http_status(&addr, "/healthz").await?;
        if status.contains(" 200 ") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let exits = services.stop(Duration::from_secs(10)).await;
    assert_eq!(exits.len(), 1);
    assert_eq!(exits[0].name, "relayer");
    assert!(exits[0].outcome.is_ok(), "{:?}", exits[0].outcome);

    let pid = chain.anvil().pid().ok_or("anvil has a pid")?;
    assert!(alive(pid));
    chain.stop().await;
    assert!(!alive(pid), "anvil {pid} outlived Chain::stop");
    Ok(())
}

#[tokio::test]
async fn automining_mines_only_transactions_and_a_block_time_mines_blocks() -> TestResult {
    let automine = Anvil::start(&AnvilOptions::default()).await?;
    let interval = Anvil::start(&AnvilOptions {
        block_time_secs: Some(1),
        accounts: 3,
        ..AnvilOptions::default()
    })
    .await?;
    assert_eq!(automine.keys().len(), 10);
    assert_eq!(interval.addresses().len(), 3);
    let head = |anvil: &Anvil| {
        let provider = alloy::providers::ProviderBuilder::new()
            .connect_reqwest(verinfer_wire::tls::default_http_client(), anvil.endpoint());
        async move { provider.get_block_number().await }
    };
    let (automine_before, interval_before) = (head(&automine).await?, head(&interval).await?);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(head(&automine).await?, automine_before);
    assert!(head(&interval).await? >= interval_before + 2);
    Ok(())
}

#[tokio::test]
async fn a_taken_port_is_refused_before_anvil_starts() -> TestResult {
    let taken = TcpListener::bind("127.0.0.1:0")?;
    let port = taken.local_addr()?.port();
    let error = Anvil::start(&AnvilOptions {
        port,
        ..AnvilOptions::default()
    })
    .await
    .err()
    .ok_or("anvil started on a taken port")?;
    assert!(
        matches!(error, verinfer_devchain::Error::PortInUse { port: p } if p == port),
        "{error}"
    );
    Ok(())
}

#[tokio::test]
async fn the_deploy_script_registers_its_gpu_models_with_devnet_fees_and_no_params_delay()
-> TestResult {
    let out = tempfile::tempdir()?;
    let deploy = Deploy::Script {
        root: repo_root(),
        params: ScriptParams {
            commit_window: 60,
            reveal_window: 30,
            threshold: 8,
        },
        out_dir: out.path().to_path_buf(),
    };
    let chain = Chain::start(&AnvilOptions::default(), deploy).await?;
    let path = chain
        .deployment_path()
        .ok_or("a script deployment has a record")?;
    let record: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    assert_eq!(record["paramsDelay"], 0, "{record}");
    assert_eq!(chain.deployment().owner, chain.address(0)?);

    let verinfer = chain.verinfer();
    assert_eq!(verinfer.paramsDelay().call().await?, 0);
    let params = verinfer.params().call().await?;
    assert_eq!(
        (params.threshold, params.commitWindow, params.revealWindow),
        (8, 60, 30)
    );
    assert_eq!(
        (params.minTaskFee, params.minImageFee),
        (
            U96::from(DEVNET_MIN_TASK_FEE),
            U96::from(DEVNET_MIN_IMAGE_FEE)
        )
    );
    assert_eq!((params.queueTimeout, params.minTextPool), (86_400, 3));
    assert_eq!(
        verinfer
            .minTaskFee(TaskKind::Image.into(), 2)
            .call()
            .await?,
        U256::from(DEVNET_MIN_TASK_FEE + 2 * DEVNET_MIN_IMAGE_FEE)
    );

    let count = verinfer.gpuModelCount().call().await?;
    assert_eq!(count, U256::from(17), "the script's default GPU models");
    let mut models = Vec::new();
    for index in 0..count.to::<u64>() {
        let model = verinfer.gpuModelAt(U256::from(index)).call().await?;
        assert!(model.active);
        models.push((model.name, model.vramMiB));
    }
    for expected in [
        ("nvidia h100 80gb hbm3", 81_559),
        ("nvidia a100-sxm4-80gb", 81_920),
        ("nvidia geforce rtx 4090", 24_564),
        ("nvidia l4", 23_034),
        ("tesla t4", 15_360),
    ] {
        assert!(
            models.contains(&(expected.0.to_owned(), expected.1)),
            "{expected:?} not in {models:?}"
        );
    }
    chain.stop().await;
    Ok(())
}

#[tokio::test]
async fn node_models_are_registered_and_the_drawer_starts_queued_tasks() -> TestResult {
    let deploy = Deploy::Bindings {
        params: default_init_params(),
        treasury: 1,
    };
    let chain = Chain::start(&AnvilOptions::default(), deploy).await?;
    let verinfer = chain.verinfer();
    assert_eq!(verinfer.gpuModelCount().call().await?, U256::ZERO);

    // The models three node configurations declare are registered, each once, with the VRAM of
    // the first node that declares it.
    let env = NodeEnv {
        rpc_url: chain.rpc_url(),
        deployment: *chain.deployment(),
        relayer_url: "http://127.0.0.1:1".parse()?,
        models_dir: std::env::temp_dir(),
    };
    let dir = tempfile::tempdir()?;
    let identity = |gpu_model: &str, vram_mib| {
        Some(IdentityOverride {
            gpu_model: gpu_model.to_owned(),
            vram_mib,
        })
    };
    let configs = [
        env.node_config(
            chain.key(2)?,
            dir.path().join("a"),
            identity("kit-gpu-a", 8_192),
        ),
        env.node_config(
            chain.key(3)?,
            dir.path().join("b"),
            identity("KIT-GPU-A", 24_576),
        ),
        env.node_config(
            chain.key(4)?,
            dir.path().join("c"),
            identity("kit-gpu-b", 16_384),
        ),
    ];
    register_declared_gpu_models(configs.iter().map(|config| ("node", config))).await?;
    assert_eq!(verinfer.gpuModelCount().call().await?, U256::from(2));
    let a = verinfer
        .gpuModel(verinfer.gpuModelId("kit-gpu-a".into()).call().await?)
        .call()
        .await?;
    assert_eq!((a.name.as_str(), a.vramMiB), ("kit-gpu-a", 8_192));
    register_declared_gpu_models(configs.iter().map(|config| ("node", config))).await?;
    assert_eq!(verinfer.gpuModelCount().call().await?, U256::from(2));

    // Three nodes join by hand; a task is created and waits until the drawer draws it.
    let stake = 1_000 * TOKEN;
    let nodes = [chain.address(2)?, chain.address(3)?, chain.address(4)?];
    let creator = chain.address(5)?;
    chain
        .fund(
            nodes
                .iter()
                .chain([&creator])
                .map(|a| (*a, U256::from(2 * stake))),
        )
        .await?;
    let token = IERC20::new(chain.deployment().staking_token, chain.provider());
    for (node, model) in nodes
        .into_iter()
        .zip(["kit-gpu-a", "kit-gpu-a", "kit-gpu-b"])
    {
        token
            .approve(chain.deployment().verinfer, U256::from(stake))
            .from(node)
            .send()
            .await?
            .get_receipt()
            .await?;
        let join = verinfer
            .join(model.to_owned(), 0, U96::from(stake))
            .from(node)
            .block(alloy::eips::BlockId::pending());
        let gas = join.estimate_gas().await?;
        let receipt = join
            .gas(padded_gas_limit(gas))
            .send()
            .await?
            .get_receipt()
            .await?;
        assert!(receipt.status());
    }
    let fee = DEVNET_MIN_TASK_FEE + DEVNET_MIN_IMAGE_FEE;
    token
        .approve(chain.deployment().verinfer, U256::from(fee))
        .from(creator)
        .send()
        .await?
        .get_receipt()
        .await?;
    let create = verinfer
        .createTask(
            TaskKind::Image.into(),
            keccak256(b"kit"),
            1,
            8_192,
            String::new(),
            U96::from(fee),
        )
        .from(creator)
        .block(alloy::eips::BlockId::pending());
    let gas = create.estimate_gas().await?;
    let receipt = create
        .gas(padded_gas_limit(gas))
        .send()
        .await?
        .get_receipt()
        .await?;
    assert!(receipt.status());
    let task_id = U256::from(1);
    let status = |info: verinfer_abi::IVerinfer::TaskInfo| TaskStatus::try_from(info.status);
    assert_eq!(
        status(verinfer.getTask(task_id).call().await?)?,
        TaskStatus::Queued
    );
    // Automining: nothing else is sent, so the task waits for the drawer.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        status(verinfer.getTask(task_id).call().await?)?,
        TaskStatus::Queued
    );

    let mut services = Services::new();
    services.start_drawer(
        &chain.rpc_url(),
        chain.deployment().verinfer,
        chain.key(6)?,
        Duration::from_millis(100),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let task = verinfer.getTask(task_id).call().await?;
        if status(task.clone())? == TaskStatus::Committing {
            let mut drawn = task.nodes.to_vec();
            drawn.sort();
            let mut ours = nodes.to_vec();
            ours.sort();
            assert_eq!(drawn, ours);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the drawer did not start the task"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let exits = services.stop(Duration::from_secs(5)).await;
    assert_eq!(exits.len(), 1);
    assert_eq!(exits[0].name, "drawer");
    assert!(exits[0].outcome.is_ok(), "{:?}", exits[0].outcome);
    chain.stop().await;
    Ok(())
}
