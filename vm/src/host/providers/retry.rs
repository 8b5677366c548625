//! Retrying a model turn: exponential backoff with full jitter on retryable errors only (429,
//! 408, 409, 5xx, broken connections, timeouts), honouring the server's `Retry-After` up to a
//! cap, each attempt under an optional deadline. The attempt count goes to the journal.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use crate::host::llm::{ModelRequest, ModelResponse, Provider, ProviderError};

/// When and how often to try again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryRule {
    /// Attempts in all, the first included (1 = no retry). 0 is taken as 1.
    pub max_attempts: u32,
    /// The backoff ceiling of the first retry; it doubles with each retry.
    pub base_delay: Duration,
    /// The backoff ceiling never grows past this.
    pub max_delay: Duration,
    /// A server's `Retry-After` is honoured up to this long.
    pub max_retry_after: Duration,
    /// A deadline for each attempt (the provider's own request timeout also applies).
    pub attempt_timeout: Option<Duration>,
}

impl Default for RetryRule {
    /// 4 attempts, backoff ceilings 0.5 s, 1 s, 2 s (at most 20 s), `Retry-After` up to 60 s.
    fn default() -> Self {
        RetryRule {
            max_attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
            max_retry_after: Duration::from_secs(60),
            attempt_timeout: None,
        }
    }
}

impl RetryRule {
    /// No retries at all.
    pub fn none() -> Self {
        RetryRule {
            max_attempts: 1,
            ..RetryRule::default()
        }
    }

    /// How long to wait after failed attempt number `attempt` (1-based) before the next one.
    /// With a `Retry-After`, that (capped at `max_retry_after`); otherwise "full jitter":
    /// uniformly in `[0, min(max_delay, base_delay * 2^(attempt-1))]`, so that many clients
    /// refused at once do not come back at once. `random` is any uniformly random u64.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>, random: u64) -> Duration {
        if let Some(ra) = retry_after {
            return ra.min(self.max_retry_after);
        }
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        let ceiling = self
            .base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(random % (nanos + 1))
    }
}

/// A random u64 from the standard library's per-process random hash keys, mixed with a
/// counter: jitter needs spread, not cryptographic strength, and this needs no dependency.
fn random_u64() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

fn retry_after_of(e: &ProviderError) -> Option<Duration> {
    match e {
        ProviderError::Http { retry_after, .. } => *retry_after,
        _ => None,
    }
}

/// Calls `p` until it answers, fails with an error that is not retryable, or `rule` allows no
/// more attempts. Returns the last result and the number of attempts made (at least 1).
pub async fn call_with_retries(
    p: &dyn Provider,
    req: &ModelRequest,
    rule: &RetryRule,
) -> (Result<ModelResponse, ProviderError>, u32) {
    let max = rule.max_attempts.max(1);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = match rule.attempt_timeout {
            Some(limit) => match tokio::time::timeout(limit, p.call(req)).await {
                Ok(r) => r,
                Err(_) => Err(ProviderError::Timeout {
                    provider: p.name().to_string(),
                    secs: limit.as_secs(),
                }),
            },
            None => p.call(req).await,
        };
        match result {
            Err(e) if e.is_retryable() && attempt < max => {
                let wait = rule.delay(attempt, retry_after_of(&e), random_u64());
                tokio::time::sleep(wait).await;
            }
            other => return (other, attempt),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_ceilings_double_and_cap() {
        let rule = RetryRule {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
            ..RetryRule::default()
        };
        // A random value equal to a ceiling in nanoseconds waits that whole ceiling; the
        // ceiling doubles per retry up to `max_delay`.
        assert_eq!(rule.delay(1, None, 100_000_000), Duration::from_millis(100));
        assert_eq!(rule.delay(1, None, 100_000_001), Duration::ZERO);
        assert_eq!(rule.delay(2, None, 200_000_000), Duration::from_millis(200));
        assert_eq!(rule.delay(3, None, 350_000_000), Duration::from_millis(350));
        for attempt in [1, 2, 3, 10, 40, 1000] {
            for r in [0, 1, 12345, u64::MAX / 3, u64::MAX] {
                assert!(rule.delay(attempt, None, r) <= Duration::from_millis(350));
            }
        }
        // Full jitter: a zero random value waits not at all.
        assert_eq!(rule.delay(3, None, 0), Duration::ZERO);
    }

    #[test]
    fn retry_after_wins_and_is_capped() {
        let rule = RetryRule::default();
        assert_eq!(
            rule.delay(1, Some(Duration::from_secs(7)), 0),
            Duration::from_secs(7)
        );
        assert_eq!(
            rule.delay(1, Some(Duration::from_secs(3600)), 0),
            Duration::from_secs(60)
        );
    }
}
