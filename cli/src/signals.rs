//! Stop signals shared by the long-running subcommands.

/// Resolves on Ctrl-C (`"interrupted"`) or, on Unix, SIGTERM (`"terminated"`, how service
/// managers stop a daemon). A signal that cannot be listened for is logged and never fires.
pub(crate) async fn stop_signal() -> &'static str {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => "interrupted",
        () = terminate => "terminated",
    }
}
