//! The kit itself on a real anvil: a chain deployed through the bindings, funded accounts, the
//! relayer in-process, mining modes, a taken port, and anvil gone once stopped.
//!
//! Needs the npm-installed anvil (`npm ci`).

use std::{error::Error, net::TcpListener, time::Duration};

use alloy::{primitives::U256, providers::Provider};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use verinfer_abi::IERC20;
use verinfer_devchain::{
    Anvil, AnvilOptions, Chain, Deploy, Services, TOKEN, default_init_params, relayer_config,
};

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
        let provider = alloy::providers::ProviderBuilder::new().connect_http(anvil.endpoint());
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
