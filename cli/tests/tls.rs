//! HTTPS end to end: a test CA (made here with rcgen) signs a certificate for 127.0.0.1 and
//! localhost, and TLS-terminating proxies on loopback put it in front of anvil and of the
//! relayer. Then, with the CA in `ca_file` / `--ca-file`:
//!
//! - the relayer's indexer reads the chain through `https://` (and, without the CA, refuses to
//!   start with a message naming the untrusted certificate);
//! - three node daemons join, compute, commit, reveal and upload through `https://` RPC and
//!   relayer URLs;
//! - `verinfer task create --wait` (the binary, as a child process) creates a text task through
//!   both, and `verinfer task result` fetches it from the relayer and verifies it against the
//!   chain;
//! - the relayer client of `verinfer-wire` reads the task through `https://`, and fails
//!   without the CA; `verinfer task status` with another CA's file fails with a message that
//!   says the certificate is not trusted.
//!
//! Needs the npm-installed anvil (`npm ci`).

use std::{
    error::Error,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Output,
    sync::Arc,
    time::Duration,
};

use alloy::{primitives::U256, signers::local::PrivateKeySigner};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        self,
        pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
    },
};
use url::Url;
use verinfer_abi::IVerinfer;
use verinfer_devchain::{
    AnvilOptions, Chain, Deploy, NodeEnv, Services, TinyModels, default_init_params, relayer_config,
};
use verinfer_node::IdentityOverride;
use verinfer_wire::{RelayerClient, tls};

type TestResult<T = ()> = Result<T, Box<dyn Error + Send + Sync>>;

const TOKEN: u128 = 1_000_000_000_000_000_000;
const GPU: &str = "tls-gpu";
const PROMPT: &str = "over https";

/// A CA and a server certificate it signed, for 127.0.0.1 and localhost.
struct TestPki {
    ca_pem: String,
    chain: Vec<CertificateDer<'static>>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl TestPki {
    fn new(name: &str) -> TestResult<Self> {
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, name);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
        let key = KeyPair::generate()?;
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?
            .signed_by(&key, &*ca)?;
        Ok(Self {
            ca_pem: ca.pem(),
            chain: vec![leaf.der().clone(), ca.der().clone()],
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        })
    }

    fn write_ca(&self, path: &Path) -> TestResult<PathBuf> {
        std::fs::write(path, &self.ca_pem)?;
        Ok(path.to_path_buf())
    }

    /// A TLS proxy on 127.0.0.1 in front of `upstream` (plain TCP); its `https://` URL. It runs
    /// until the runtime ends.
    async fn proxy(&self, upstream: SocketAddr) -> TestResult<Url> {
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            self.chain.clone(),
            PrivateKeyDer::Pkcs8(self.key.clone_key()),
        )?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = Url::parse(&format!("https://{}/", listener.local_addr()?))?;
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A client that refuses the certificate ends the handshake: nothing to do.
                    let Ok(mut tls) = acceptor.accept(socket).await else {
                        return;
                    };
                    let Ok(mut plain) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        Ok(url)
    }
}

fn socket_addr(url: &Url) -> TestResult<SocketAddr> {
    Ok(url
        .socket_addrs(|| None)?
        .into_iter()
        .next()
        .ok_or("no address")?)
}

/// `https://127.0.0.1:PORT`, as the TLS problem names a server.
fn origin(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_owned()
}

/// `verinfer task …` as a child process with the connection in the environment.
async fn verinfer_task(args: &[&str], env: &[(&str, &str)]) -> TestResult<Output> {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_verinfer"));
    command
        .arg("task")
        .args(args)
        .envs(env.iter().copied())
        .env_remove("VERINFER_CA_FILE")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(240), command.output())
        .await
        .map_err(|_| format!("verinfer task {args:?} did not finish in 240 s"))??;
    Ok(output)
}

/// An error's message and its sources' messages, one a line.
fn chain_text(error: &(dyn Error + 'static)) -> String {
    let mut lines = vec![error.to_string()];
    let mut source = error.source();
    while let Some(error) = source {
        lines.push(error.to_string());
        source = error.source();
    }
    lines.join("\n")
}

fn text(output: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn node_relayer_and_task_over_https_with_a_ca_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let pki = TestPki::new("verinfer test CA")?;
    let ca_file = pki.write_ca(&dir.path().join("ca.pem"))?;
    let other_ca = TestPki::new("another CA")?.write_ca(&dir.path().join("other-ca.pem"))?;

    let models_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/e2e-models");
    let models = tokio::task::spawn_blocking(move || TinyModels::make(&models_dir, 0)).await??;
    let anvil = AnvilOptions {
        accounts: 8,
        ..AnvilOptions::devnet()
    };
    let deploy = Deploy::Bindings {
        params: IVerinfer::Params {
            commitWindow: 20,
            revealWindow: 6,
            ..default_init_params()
        },
        treasury: 0,
    };
    let chain = Chain::start(&anvil, deploy).await?;
    let deployment = *chain.deployment();
    let deployment_path = dir.path().join("deployment.json");
    deployment.save(&deployment_path)?;
    let creator = chain.key(1)?;
    let nodes: Vec<PrivateKeySigner> = (2..5).map(|i| chain.key(i)).collect::<Result<_, _>>()?;
    let mut funded = vec![(creator.address(), U256::from(100 * TOKEN))];
    funded.extend(
        nodes
            .iter()
            .map(|n| (n.address(), U256::from(10_000 * TOKEN))),
    );
    chain.fund(funded).await?;

    let rpc = pki.proxy(socket_addr(&chain.rpc_url())?).await?;
    let mut services = Services::new();

    // Without the CA the relayer's indexer refuses anvil's certificate, and says so.
    let mut config = relayer_config(&rpc, &deployment, &dir.path().join("relayer"), 0);
    let refused = services
        .start_relayer(&config)
        .await
        .expect_err("an untrusted certificate");
    let message = chain_text(&refused);
    assert!(
        message.contains(&format!(
            "TLS certificate of {} not trusted (UnknownIssuer): add its CA with --ca-file (or \
             VERINFER_CA_FILE, or ca_file in the config)",
            origin(&rpc)
        )),
        "{message}"
    );

    // With it, the indexer reads the chain through the proxy; the API gets a proxy of its own.
    config.ca_file = Some(ca_file.clone());
    let relayer_http = services.start_relayer(&config).await?;
    let relayer = pki.proxy(socket_addr(&relayer_http)?).await?;

    let env = NodeEnv {
        rpc_url: rpc.clone(),
        deployment,
        relayer_url: relayer.clone(),
        models_dir: models.dir.clone(),
    };
    for (index, key) in nodes.into_iter().enumerate() {
        let identity = IdentityOverride {
            gpu_model: GPU.to_owned(),
            vram_mib: 8_192,
        };
        let mut config = env.node_config(
            key,
            dir.path().join(format!("node-{index}")),
            Some(identity),
        );
        config.ca_file = Some(ca_file.clone());
        config.args_deadline_margin_secs = 2;
        services
            .start_node(&format!("node-{index}"), config)
            .await?;
    }

    let creator_key = format!("0x{}", alloy::primitives::hex::encode(creator.to_bytes()));
    let ca = ca_file.to_str().ok_or("path")?;
    let connection = [
        ("VERINFER_KEY", creator_key.as_str()),
        ("VERINFER_RPC_URL", rpc.as_str()),
        ("VERINFER_RELAYER_URL", relayer.as_str()),
        (
            "VERINFER_DEPLOYMENT",
            deployment_path.to_str().ok_or("path")?,
        ),
    ];
    let llama = models.dir.join("tiny-llama");
    let created = verinfer_task(
        &[
            "create",
            "--text",
            "--prompt",
            PROMPT,
            "--model",
            llama.to_str().ok_or("path")?,
            "--max-tokens",
            "8",
            "--gpu-model",
            GPU,
            "--fee",
            "1",
            "--wait",
            "--ca-file",
            ca,
        ],
        &connection,
    )
    .await?;
    assert!(created.status.success(), "{}", text(&created));
    let stdout = String::from_utf8_lossy(&created.stdout);
    assert!(stdout.contains("equal: agree"), "{}", text(&created));
    let id: u64 = stdout
        .lines()
        .find_map(|line| {
            line.strip_prefix("task ")?
                .split_once(" created (")?
                .0
                .parse()
                .ok()
        })
        .ok_or_else(|| format!("no task id in\n{}", text(&created)))?;

    // The result, from the relayer through https, verified against the chain through https.
    let out = dir.path().join("result");
    let fetched = verinfer_task(
        &[
            "result",
            &id.to_string(),
            "--out",
            out.to_str().ok_or("path")?,
            "--ca-file",
            ca,
        ],
        &connection,
    )
    .await?;
    assert!(fetched.status.success(), "{}", text(&fetched));
    assert!(out.join("output.txt").is_file(), "{}", text(&fetched));

    // The relayer client: through https with the CA, refused without it.
    let trusted = RelayerClient::with_http(relayer.clone(), tls::http_client(Some(&ca_file))?);
    let task = trusted.task(id).await?;
    assert_eq!(task.task_id, id);
    let untrusted = RelayerClient::new(relayer.clone())
        .task(id)
        .await
        .expect_err("an untrusted certificate");
    assert!(
        untrusted.to_string().contains(&format!(
            "TLS certificate of {} not trusted (UnknownIssuer)",
            origin(&relayer)
        )),
        "{untrusted}"
    );

    // Another CA's file: the CLI fails and says why.
    let refused = verinfer_task(
        &[
            "status",
            &id.to_string(),
            "--ca-file",
            other_ca.to_str().ok_or("path")?,
        ],
        &connection,
    )
    .await?;
    assert!(!refused.status.success(), "{}", text(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        [&rpc, &relayer]
            .iter()
            .any(|server| stderr.contains(&format!(
                "TLS certificate of {} not trusted (UnknownIssuer): add its CA with --ca-file",
                origin(server)
            ))),
        "{}",
        text(&refused)
    );

    services.stop(Duration::from_secs(10)).await;
    Ok(())
}
