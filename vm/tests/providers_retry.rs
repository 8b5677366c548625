//! `call_with_retries`: which errors are retried, how many attempts, how long it waits
//! (`Retry-After` honoured and capped; measured on tokio's paused clock, so exact and never
//! flaky), attempt deadlines, and retries over real HTTP against a fake server.

use std::sync::Mutex;
use std::time::Duration;

use aivm_fakes::{openai, FakeOpenAi, Reply};
use aivm_vm::host::llm::{
    BoxFuture, Finish, Message, ModelRequest, ModelResponse, Provider, ProviderError, Role, Usage,
};
use aivm_vm::host::providers::openai::OpenAiProvider;
use aivm_vm::host::providers::retry::{call_with_retries, RetryRule};
use aivm_vm::host::providers::HttpSettings;
use aivm_vm::host::providers::Limits;
use tokio::time::Instant;

/// Answers from a list of outcomes, one per call; `None` sleeps for an hour (a hung server).
struct Canned {
    outcomes: Mutex<Vec<Option<Result<ModelResponse, ProviderError>>>>,
    calls: Mutex<u32>,
}

impl Canned {
    fn new(mut outcomes: Vec<Option<Result<ModelResponse, ProviderError>>>) -> Self {
        outcomes.reverse();
        Canned {
            outcomes: Mutex::new(outcomes),
            calls: Mutex::new(0),
        }
    }
    fn calls(&self) -> u32 {
        *self.calls.lock().unwrap()
    }
}

impl Provider for Canned {
    fn name(&self) -> &str {
        "canned"
    }
    fn call<'a>(
        &'a self,
        _req: &'a ModelRequest,
    ) -> BoxFuture<'a, Result<ModelResponse, ProviderError>> {
        *self.calls.lock().unwrap() += 1;
        let next = self
            .outcomes
            .lock()
            .unwrap()
            .pop()
            .expect("a test scripts enough outcomes");
        Box::pin(async move {
            match next {
                Some(r) => r,
                None => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Err(ProviderError::Exhausted("hung".into()))
                }
            }
        })
    }
}

fn ok() -> Option<Result<ModelResponse, ProviderError>> {
    Some(Ok(ModelResponse {
        content: "fine".into(),
        tool_calls: vec![],
        finish: Finish::Stop,
        usage: Usage::default(),
        model: "m".into(),
    }))
}

fn http(status: u16, retry_after: Option<u64>) -> Option<Result<ModelResponse, ProviderError>> {
    Some(Err(ProviderError::Http {
        provider: "canned".into(),
        status,
        message: "no".into(),
        retry_after: retry_after.map(Duration::from_secs),
    }))
}

fn req() -> ModelRequest {
    ModelRequest::new("m", vec![Message::text(Role::User, "hi")])
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_waited_exactly() {
    let p = Canned::new(vec![http(429, Some(7)), ok()]);
    let start = Instant::now();
    let (r, attempts) = call_with_retries(&p, &req(), &RetryRule::default()).await;
    assert_eq!(r.unwrap().content, "fine");
    assert_eq!(attempts, 2);
    // The paused clock advances only by the sleep: exactly the server's 7 s.
    assert_eq!(start.elapsed(), Duration::from_secs(7));
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_capped() {
    let p = Canned::new(vec![http(503, Some(3600)), ok()]);
    let rule = RetryRule {
        max_retry_after: Duration::from_secs(30),
        ..RetryRule::default()
    };
    let start = Instant::now();
    let (r, attempts) = call_with_retries(&p, &req(), &rule).await;
    assert!(r.is_ok());
    assert_eq!(attempts, 2);
    assert_eq!(start.elapsed(), Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn backoff_stays_under_its_ceilings() {
    let p = Canned::new(vec![
        http(500, None),
        http(502, None),
        http(500, None),
        ok(),
    ]);
    let rule = RetryRule {
        max_attempts: 4,
        base_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(60),
        ..RetryRule::default()
    };
    let start = Instant::now();
    let (r, attempts) = call_with_retries(&p, &req(), &rule).await;
    assert!(r.is_ok());
    assert_eq!(attempts, 4);
    // Full jitter: each wait is in [0, 1 s], [0, 2 s], [0, 4 s].
    assert!(
        start.elapsed() <= Duration::from_secs(7),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn only_retryable_errors_are_retried() {
    for e in [
        http(400, None),
        http(401, None),
        Some(Err(ProviderError::Protocol {
            provider: "canned".into(),
            message: "garbage".into(),
        })),
        Some(Err(ProviderError::Config("no key".into()))),
        Some(Err(ProviderError::Exhausted("done".into()))),
    ] {
        let p = Canned::new(vec![e, ok()]);
        let (r, attempts) = call_with_retries(&p, &req(), &RetryRule::default()).await;
        assert!(r.is_err());
        assert_eq!((attempts, p.calls()), (1, 1));
    }
    for e in [
        http(408, None),
        http(409, None),
        http(429, None),
        http(599, None),
        Some(Err(ProviderError::Connect {
            provider: "canned".into(),
            message: "refused".into(),
        })),
        Some(Err(ProviderError::Timeout {
            provider: "canned".into(),
            secs: 1,
        })),
    ] {
        let p = Canned::new(vec![e, ok()]);
        let (r, attempts) = call_with_retries(&p, &req(), &RetryRule::default()).await;
        assert!(r.is_ok());
        assert_eq!(attempts, 2);
    }
}

#[tokio::test(start_paused = true)]
async fn attempts_are_bounded_and_the_last_error_returned() {
    let p = Canned::new(vec![
        http(500, None),
        http(502, None),
        http(503, None),
        ok(),
    ]);
    let rule = RetryRule {
        max_attempts: 3,
        ..RetryRule::default()
    };
    let (r, attempts) = call_with_retries(&p, &req(), &rule).await;
    assert!(matches!(r, Err(ProviderError::Http { status: 503, .. })));
    assert_eq!((attempts, p.calls()), (3, 3));

    let p = Canned::new(vec![http(500, None), ok()]);
    let (r, attempts) = call_with_retries(&p, &req(), &RetryRule::none()).await;
    assert!(r.is_err());
    assert_eq!(attempts, 1);
    let p = Canned::new(vec![http(500, None), ok()]);
    let zero = RetryRule {
        max_attempts: 0,
        ..RetryRule::default()
    };
    assert_eq!(
        call_with_retries(&p, &req(), &zero).await.1,
        1,
        "0 attempts means 1"
    );
}

#[tokio::test(start_paused = true)]
async fn a_hung_attempt_times_out_and_is_retried() {
    let p = Canned::new(vec![None, ok()]);
    let rule = RetryRule {
        attempt_timeout: Some(Duration::from_secs(5)),
        ..RetryRule::default()
    };
    let start = Instant::now();
    let (r, attempts) = call_with_retries(&p, &req(), &rule).await;
    assert!(r.is_ok());
    assert_eq!(attempts, 2);
    assert!(start.elapsed() >= Duration::from_secs(5) && start.elapsed() < Duration::from_secs(6));

    let p = Canned::new(vec![None]);
    let rule = RetryRule {
        max_attempts: 1,
        ..rule
    };
    let (r, _) = call_with_retries(&p, &req(), &rule).await;
    assert_eq!(
        r.unwrap_err(),
        ProviderError::Timeout {
            provider: "canned".into(),
            secs: 5
        }
    );
}

#[tokio::test]
async fn retries_over_http_honour_retry_after_ms() {
    let fake = FakeOpenAi::start().await.unwrap();
    fake.push(
        Reply::json(
            429,
            &openai::error_body(429, "slow down", "rate_limit_error"),
        )
        .with_header("retry-after-ms", "20"),
    );
    fake.push(Reply::json(
        500,
        &openai::error_body(500, "oops", "server_error"),
    ));
    fake.push(Reply::json(200, &openai::completion("third time", "stop")));
    let p = OpenAiProvider::new(HttpSettings {
        name: "openai:test".into(),
        base_url: fake.base_url(),
        api_key: None,
        stream: false,
        limits: Limits::default(),
    })
    .unwrap();
    let rule = RetryRule {
        base_delay: Duration::from_millis(1),
        ..RetryRule::default()
    };
    let start = std::time::Instant::now();
    let (r, attempts) = call_with_retries(&p, &req(), &rule).await;
    assert_eq!(r.unwrap().content, "third time");
    assert_eq!(attempts, 3);
    assert_eq!(fake.requests().len(), 3);
    // A lower bound only: the server asked for 20 ms.
    assert!(start.elapsed() >= Duration::from_millis(20));

    // A 400 is not retried: one request more, not four.
    fake.push(Reply::json(
        400,
        &openai::error_body(400, "bad", "invalid_request_error"),
    ));
    let (r, attempts) = call_with_retries(&p, &req(), &rule).await;
    assert!(matches!(r, Err(ProviderError::Http { status: 400, .. })));
    assert_eq!((attempts, fake.requests().len()), (1, 4));
}
