//! Signals: SIGINT and SIGTERM stop, SIGHUP reloads (Ctrl-C elsewhere).

#[cfg(unix)]
use anyhow::Context as _;

/// What a signal asks for.
pub(crate) enum Signal {
    Stop(&'static str),
    Reload,
}

/// SIGINT, SIGTERM and SIGHUP (Ctrl-C elsewhere).
pub(crate) struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    pub(crate) fn install() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt()).context("installing SIGINT handler")?,
                terminate: signal(SignalKind::terminate()).context("installing SIGTERM handler")?,
                hangup: signal(SignalKind::hangup()).context("installing SIGHUP handler")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Waits for the next signal.
    pub(crate) async fn recv(&mut self) -> Signal {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => Signal::Stop("SIGINT"),
                _ = self.terminate.recv() => Signal::Stop("SIGTERM"),
                _ = self.hangup.recv() => Signal::Reload,
            }
        }
        #[cfg(not(unix))]
        {
            match tokio::signal::ctrl_c().await {
                Ok(()) => Signal::Stop("Ctrl-C"),
                Err(_) => std::future::pending().await,
            }
        }
    }
}
