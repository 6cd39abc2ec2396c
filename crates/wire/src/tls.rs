//! HTTPS for every HTTP client verinfer builds: the node's and the client's RPC provider, the
//! relayer's indexer, the relayer API client and the CLI.
//!
//! One [`http_client`] builds them all, on rustls with the `ring` provider. It trusts the
//! system's roots (`SSL_CERT_FILE` / `SSL_CERT_DIR` replace them, as with OpenSSL) plus an
//! optional extra CA file: PEM, one or more certificates, from `--ca-file`, `VERINFER_CA_FILE`
//! or `ca_file` in the node's and relayer's configs. Plain `http://` URLs work as before.
//!
//! A certificate that fails verification is a [`TlsProblem`], found in any error's source
//! chain by [`tls_problem`], whose message names the TLS failure and the fix.

use std::{
    error::Error as StdError,
    fmt,
    path::{Path, PathBuf},
    sync::{Arc, OnceLock},
};

use rustls::{CertificateError, RootCertStore};
use rustls_pki_types::{CertificateDer, pem::PemObject};
use url::Url;

/// The environment variable naming an extra CA file (PEM) to trust, besides the system's roots.
pub const CA_FILE_ENV: &str = "VERINFER_CA_FILE";

/// Why the HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The CA file could not be read or is not PEM.
    #[error("cannot read CA file {path}: {source}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// The read or parse error.
        source: rustls_pki_types::pem::Error,
    },
    /// The CA file holds no certificate.
    #[error("CA file {path} holds no PEM certificate")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A certificate of the CA file is not a usable trust anchor.
    #[error("CA file {path}: a certificate is not a usable CA: {source}")]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// Why rustls refused it.
        source: rustls::Error,
    },
    /// reqwest refused the configuration.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// Installs rustls' `ring` provider as the process default, once; later calls do nothing.
///
/// [`http_client`] does not need it (it names its provider), but an HTTP client built elsewhere
/// (`reqwest::Client::new()`, alloy's `connect_http`) panics without a process default, since
/// reqwest is built without its own provider.
pub fn install_crypto_provider() {
    // An error means a default is installed already, which is all that is asked.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The trusted roots: the system's (or `SSL_CERT_FILE`'s / `SSL_CERT_DIR`'s), plus every
/// certificate of `ca_file`.
pub fn root_store(ca_file: Option<&Path>) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::warn!(%error, "cannot load some of the system's TLS roots");
    }
    // System stores carry certificates rustls cannot use as anchors; skip those, as browsers do.
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!(added, ignored, "system TLS roots");
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|source| TlsError::CaFile {
                path: path.to_path_buf(),
                source,
            })?;
        if certs.is_empty() {
            return Err(TlsError::NoCertificate {
                path: path.to_path_buf(),
            });
        }
        for cert in certs {
            roots.add(cert).map_err(|source| TlsError::BadCertificate {
                path: path.to_path_buf(),
                source,
            })?;
        }
    }
    Ok(roots)
}

/// The rustls client configuration of [`http_client`].
pub fn client_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|source| TlsError::BadCertificate {
            path: ca_file.map(Path::to_path_buf).unwrap_or_default(),
            source,
        })?
        .with_root_certificates(root_store(ca_file)?)
        .with_no_client_auth();
    // reqwest is built without HTTP/2.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The HTTP client for every RPC endpoint and relayer: `https://` verified against the system's
/// roots plus `ca_file` (else the file `VERINFER_CA_FILE` names, if set), `http://` as is.
pub fn http_client(ca_file: Option<&Path>) -> Result<reqwest::Client, TlsError> {
    match ca_file.map(Path::to_path_buf).or_else(ca_file_from_env) {
        Some(path) => build(Some(&path)),
        None => Ok(default_http_client()),
    }
}

/// The file `VERINFER_CA_FILE` names, when set and not empty.
pub fn ca_file_from_env() -> Option<PathBuf> {
    std::env::var_os(CA_FILE_ENV)
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
}

fn build(ca_file: Option<&Path>) -> Result<reqwest::Client, TlsError> {
    install_crypto_provider();
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(client_config(ca_file)?)
        .build()?)
}

/// [`http_client`] without a CA file argument (the system's roots, plus `VERINFER_CA_FILE`'s
/// certificates when it is set), built once per process and shared (a `reqwest::Client` is a
/// handle to one connection pool). Infallible: a CA file that cannot be used is logged and
/// left out, so that `https://` servers it would vouch for fail as untrusted.
pub fn default_http_client() -> reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let from_env = ca_file_from_env();
            let built = build(from_env.as_deref()).or_else(|error| {
                tracing::error!(%error, "{CA_FILE_ENV} is not usable; trusting the system's roots only");
                build(None)
            });
            built.unwrap_or_else(|error| {
                // Only reqwest's own setup fails without a CA file; its default client still
                // verifies against the system's roots, with the provider installed above.
                tracing::warn!(%error, "falling back to reqwest's default TLS setup");
                reqwest::Client::new()
            })
        })
        .clone()
}

/// A TLS failure found in an error's source chain: which server, and what rustls said.
#[derive(Debug, Clone)]
pub struct TlsProblem {
    /// The URL requested, when the chain names it.
    pub url: Option<Url>,
    /// The rustls error.
    pub error: rustls::Error,
}

impl fmt::Display for TlsProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let server = match &self.url {
            // Scheme, host and port: the path says nothing about the certificate.
            Some(url) => format!(
                "{}://{}",
                url.scheme(),
                url.host_str()
                    .map(|host| match url.port() {
                        Some(port) => format!("{host}:{port}"),
                        None => host.to_owned(),
                    })
                    .unwrap_or_default()
            ),
            None => "the server".to_owned(),
        };
        match &self.error {
            rustls::Error::InvalidCertificate(
                error @ (CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. }),
            ) => write!(
                f,
                "TLS certificate of {server} is not valid for its host name ({}): connect by \
                 a name the certificate lists",
                short(error)
            ),
            rustls::Error::InvalidCertificate(
                error @ (CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. }),
            ) => write!(
                f,
                "TLS certificate of {server} is outside its validity period ({})",
                short(error)
            ),
            rustls::Error::InvalidCertificate(error) => write!(
                f,
                "TLS certificate of {server} not trusted ({}): add its CA with --ca-file \
                 (or {CA_FILE_ENV}, or ca_file in the config)",
                short(error)
            ),
            error => write!(f, "TLS handshake with {server} failed: {error}"),
        }
    }
}

impl StdError for TlsProblem {}

/// The variant's name without the context rustls attaches (`UnknownIssuer`, `Expired`, ...).
fn short(error: &CertificateError) -> String {
    let debug = format!("{error:?}");
    match debug.find([' ', '{', '(']) {
        Some(end) => debug[..end].to_owned(),
        None => debug,
    }
}

/// The TLS failure in `error`'s source chain, if there is one.
pub fn tls_problem(error: &(dyn StdError + 'static)) -> Option<TlsProblem> {
    let mut url = None;
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(request) = error.downcast_ref::<reqwest::Error>() {
            url = url.or_else(|| request.url().cloned());
        }
        if let Some(tls) = error.downcast_ref::<rustls::Error>() {
            return Some(TlsProblem {
                url,
                error: tls.clone(),
            });
        }
        if let Some(problem) = error.downcast_ref::<TlsProblem>() {
            return Some(problem.clone());
        }
        // io::Error's `source()` skips the error it wraps, which is where rustls' error sits.
        if let Some(inner) = error
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            next = Some(inner);
            continue;
        }
        next = error.source();
    }
    None
}

/// `error`'s message followed by its causes, or its [`TlsProblem`]'s message when it has one (a
/// transport error's own message is "error sending request for url (...)", which hides whether
/// the connection was refused, timed out or failed its TLS handshake).
pub fn explain(error: &(dyn StdError + 'static)) -> String {
    match tls_problem(error) {
        Some(problem) => problem.to_string(),
        None => chain(error),
    }
}

/// `error`'s message and every source's, joined by `": "`: `error sending request for url
/// (http://127.0.0.1:8545/): client error (Connect): tcp connect error: Connection refused (os
/// error 111)`. A cause whose message is already part of the text so far (errors that repeat
/// their source's message in their own) is left out, so nothing is said twice.
pub fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = source_of(error);
    while let Some(cause) = next {
        let message = cause.to_string();
        if !message.is_empty() && !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        next = source_of(cause);
    }
    text
}

/// `error`'s source; for an `io::Error` wrapping another error, the wrapped one (whose message
/// `io::Error` shows as its own, and whose source `io::Error::source` skips).
fn source_of<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a (dyn StdError + 'static)> {
    match error.downcast_ref::<std::io::Error>() {
        Some(io) => match io.get_ref() {
            Some(inner) => inner.source(),
            None => io.source(),
        },
        None => error.source(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_certificate_problem_and_the_fix() {
        let problem = TlsProblem {
            url: Some(Url::parse("https://127.0.0.1:8545/rpc").unwrap()),
            error: rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        };
        assert_eq!(
            problem.to_string(),
            "TLS certificate of https://127.0.0.1:8545 not trusted (UnknownIssuer): add its CA \
             with --ca-file (or VERINFER_CA_FILE, or ca_file in the config)"
        );
    }

    #[test]
    fn finds_rustls_errors_inside_io_errors() {
        let io = std::io::Error::other(rustls::Error::InvalidCertificate(
            CertificateError::BadSignature,
        ));
        let problem = tls_problem(&io).expect("found");
        assert!(matches!(
            problem.error,
            rustls::Error::InvalidCertificate(CertificateError::BadSignature)
        ));
        assert_eq!(explain(&std::io::Error::other("plain")), "plain");
    }

    #[derive(Debug, thiserror::Error)]
    #[error("outer: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("top")]
    struct Top(#[source] Repeats);

    #[test]
    fn the_chain_names_every_cause_once() {
        let error = Top(Repeats(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused",
        )));
        assert_eq!(chain(&error), "top: outer: Connection refused");
        assert_eq!(explain(&error), "top: outer: Connection refused");
    }

    /// A request to a closed loopback port says why it failed, not only that it did.
    #[tokio::test]
    async fn a_refused_connection_says_so() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let url: Url = format!("http://127.0.0.1:{port}/").parse().unwrap();
        let client = crate::RelayerClient::new(url);
        let message = client.health().await.unwrap_err().to_string();
        assert!(message.contains("Connection refused"), "{message}");
        assert!(
            message.contains(&format!(
                "error sending request for url (http://127.0.0.1:{port}/"
            )),
            "{message}"
        );
        assert_eq!(
            message.matches("error sending request").count(),
            1,
            "{message}"
        );
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = std::env::temp_dir().join(format!("verinfer-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        assert!(matches!(
            root_store(Some(&path)),
            Err(TlsError::NoCertificate { .. })
        ));
        assert!(matches!(
            root_store(Some(&dir.join("missing.pem"))),
            Err(TlsError::CaFile { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
