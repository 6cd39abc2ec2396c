//! Bounded, jittered exponential backoff for RPC and relayer calls.

use std::{future::Future, time::Duration};

use rand::Rng as _;

/// Backoff parameters: delays grow from `initial` by `factor` up to `max`, each randomised to
/// between half and all of its value ("equal jitter") so that nodes sharing an endpoint do not
/// retry in lockstep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// First delay.
    pub initial: Duration,
    /// Largest delay.
    pub max: Duration,
    /// Growth per attempt.
    pub factor: f64,
    /// Attempts in all (the first try included) before giving up.
    pub max_attempts: u32,
}

impl Backoff {
    /// For RPC reads and relayer calls within one poll: quick retries over a few seconds.
    pub const RPC: Self = Self {
        initial: Duration::from_millis(200),
        max: Duration::from_secs(3),
        factor: 2.0,
        max_attempts: 5,
    };

    /// The un-jittered delay before retry number `attempt` (0 = the first retry).
    pub fn base_delay(&self, attempt: u32) -> Duration {
        let scaled = self.initial.as_secs_f64() * self.factor.powi(attempt.min(64) as i32);
        Duration::from_secs_f64(scaled.min(self.max.as_secs_f64()))
    }

    /// The jittered delay before retry number `attempt`: in `[base/2, base]`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self.base_delay(attempt);
        let half = base / 2;
        half + base
            .saturating_sub(half)
            .mul_f64(rand::rng().random::<f64>())
    }

    /// Runs `operation` until it succeeds, `retryable` says an error is final, or the attempts
    /// are used up; returns the last error then.
    pub async fn retry<T, E, Fut>(
        &self,
        what: &str,
        mut operation: impl FnMut() -> Fut,
        retryable: impl Fn(&E) -> bool,
    ) -> Result<T, E>
    where
        Fut: Future<Output = Result<T, E>>,
        E: std::fmt::Display,
    {
        let mut attempt = 0;
        loop {
            match operation().await {
                Ok(value) => return Ok(value),
                Err(error) if attempt + 1 < self.max_attempts && retryable(&error) => {
                    let delay = self.delay(attempt);
                    tracing::debug!(what, attempt, ?delay, %error, "retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }
}

/// The state of a wait that is logged when it starts and when its cause changes, not at every
/// retry (an operator reads "waiting for X until T: cause" once, not once a second).
#[derive(Debug, Default)]
pub struct WaitLog {
    cause: Option<String>,
}

impl WaitLog {
    /// Records that the wait goes on because of `cause` (a short, stable name of the cause: an
    /// error code, "unreachable"); true when that is news (the first wait, or another cause),
    /// i.e. when the caller should log the wait at info level.
    pub fn changed(&mut self, cause: &str) -> bool {
        if self.cause.as_deref() == Some(cause) {
            return false;
        }
        self.cause = Some(cause.to_owned());
        true
    }

    /// Whether any wait was recorded.
    pub fn waited(&self) -> bool {
        self.cause.is_some()
    }
}

/// `HH:MM:SS UTC` of a unix time (a chain timestamp), for log lines saying until when a wait
/// lasts.
pub fn utc_clock(unix_secs: u64) -> String {
    let secs = unix_secs % 86_400;
    format!(
        "{:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[test]
    fn delays_grow_to_the_cap_and_stay_within_the_jitter_band() {
        let backoff = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            factor: 2.0,
            max_attempts: 10,
        };
        let bases: Vec<u128> = (0..6).map(|a| backoff.base_delay(a).as_millis()).collect();
        assert_eq!(bases, [100, 200, 400, 800, 1000, 1000]);
        for attempt in 0..6 {
            let base = backoff.base_delay(attempt);
            for _ in 0..50 {
                let delay = backoff.delay(attempt);
                assert!(
                    delay >= base / 2 && delay <= base,
                    "{delay:?} outside [{:?}, {base:?}]",
                    base / 2
                );
            }
        }
    }

    #[test]
    fn a_wait_is_news_when_it_starts_or_its_cause_changes() {
        let mut wait = WaitLog::default();
        assert!(!wait.waited());
        assert!(wait.changed("unreachable"));
        assert!(!wait.changed("unreachable"));
        assert!(!wait.changed("unreachable"));
        assert!(wait.changed("unknown_args"));
        assert!(wait.changed("unreachable"));
        assert!(wait.waited());
    }

    #[test]
    fn clock_times_are_utc() {
        assert_eq!(utc_clock(0), "00:00:00 UTC");
        // 2026-11-30 10:25:07 UTC.
        assert_eq!(utc_clock(1_796_034_307), "10:25:07 UTC");
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_errors_and_stops_on_final_ones() {
        let backoff = Backoff {
            max_attempts: 4,
            ..Backoff::RPC
        };
        let calls = AtomicU32::new(0);
        let result: Result<u32, String> = backoff
            .retry(
                "flaky",
                || async {
                    let n = calls.fetch_add(1, Ordering::SeqCst);
                    if n < 2 {
                        Err(format!("transient {n}"))
                    } else {
                        Ok(n)
                    }
                },
                |_| true,
            )
            .await;
        assert_eq!(result, Ok(2));

        calls.store(0, Ordering::SeqCst);
        let result: Result<u32, String> = backoff
            .retry(
                "always",
                || async {
                    Err::<u32, _>(format!("down {}", calls.fetch_add(1, Ordering::SeqCst)))
                },
                |_| true,
            )
            .await;
        assert_eq!(result, Err("down 3".to_owned()));

        calls.store(0, Ordering::SeqCst);
        let result: Result<u32, String> = backoff
            .retry(
                "final",
                || async { Err::<u32, _>(format!("bad {}", calls.fetch_add(1, Ordering::SeqCst))) },
                |_| false,
            )
            .await;
        assert_eq!(result, Err("bad 0".to_owned()));
    }
}
