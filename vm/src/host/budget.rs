//! Per-run budgets: model calls, tool calls, input/output/total tokens, cost and wall time.
//! Each is checked *before* the effect it governs, so a call that would go over what is left is
//! not made; a model call's output is capped by lowering its `max_tokens` to what remains. A
//! cost budget fails closed: a model without a price cannot be called under one. Going over
//! raises the catchable `BudgetExceeded` with payload `{budget, used, limit}`.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::config::Price;
use super::llm::{ModelRequest, Usage};
use crate::host_value::{HostData, HostError, HostValue};

/// The error kind a spent budget raises in the program.
pub const BUDGET_EXCEEDED: &str = "BudgetExceeded";

/// What a run may spend; `None` = no limit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BudgetLimits {
    pub max_llm_calls: Option<u64>,
    pub max_tool_calls: Option<u64>,
    pub max_input_tokens: Option<u64>,
    pub max_output_tokens: Option<u64>,
    /// Input and output tokens together.
    pub max_tokens: Option<u64>,
    /// US dollars.
    pub max_cost: Option<f64>,
    /// Wall time from the start of the run.
    pub timeout: Option<Duration>,
}

/// What a run has spent so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Spent {
    pub llm_calls: u64,
    pub tool_calls: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// US dollars, for the calls whose model has a price.
    pub cost: f64,
    /// Model calls whose model has no price, so that `cost` leaves them out.
    #[serde(default)]
    pub unpriced_calls: u64,
}

impl Spent {
    /// Adds what another run spent (for a summary of many runs).
    pub fn add(&mut self, other: &Spent) {
        self.llm_calls += other.llm_calls;
        self.tool_calls += other.tool_calls;
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.cost += other.cost;
        self.unpriced_calls += other.unpriced_calls;
    }
}

/// A budget that was (or would be) exceeded.
#[derive(Clone, Debug, PartialEq)]
pub struct Exceeded {
    /// `llm_calls`, `tool_calls`, `input_tokens`, `output_tokens`, `tokens`, `cost` or `time`.
    pub budget: &'static str,
    pub used: f64,
    pub limit: f64,
    pub message: String,
}

impl Exceeded {
    fn new(budget: &'static str, used: f64, limit: f64, why: &str) -> Exceeded {
        Exceeded {
            budget,
            used,
            limit,
            message: format!(
                "the {budget} budget is spent: {} used of {}{why}",
                show(used),
                show(limit)
            ),
        }
    }

    /// The payload the program sees: `{budget, used, limit}`.
    pub fn payload(&self) -> HostValue {
        let num = |x: f64| {
            if x.fract() == 0.0 && x.abs() < 9e15 {
                HostValue::int(x as i64)
            } else {
                HostValue::new(HostData::Float(x))
            }
        };
        HostValue::new(HostData::Record(vec![
            ("budget".to_string(), HostValue::str(self.budget)),
            ("used".to_string(), num(self.used)),
            ("limit".to_string(), num(self.limit)),
        ]))
    }

    /// The catchable error, kind `BudgetExceeded`.
    pub fn to_host_error(&self) -> HostError {
        HostError::new(BUDGET_EXCEEDED, self.message.clone()).with_payload(self.payload())
    }
}

fn show(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 9e15 {
        format!("{}", x as i64)
    } else {
        format!("{x:.4}")
    }
}

/// The budget of one run: limits, what is spent, and when the run began.
#[derive(Clone, Debug)]
pub struct Budget {
    pub limits: BudgetLimits,
    spent: Spent,
    started: Instant,
}

impl Budget {
    pub fn new(limits: BudgetLimits) -> Budget {
        Budget {
            limits,
            spent: Spent::default(),
            started: Instant::now(),
        }
    }

    pub fn spent(&self) -> Spent {
        self.spent
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// When the wall-time budget runs out.
    pub fn deadline(&self) -> Option<Instant> {
        self.limits.timeout.map(|t| self.started + t)
    }

    /// Whether the wall-time budget is spent.
    pub fn check_time(&self) -> Result<(), Exceeded> {
        match self.limits.timeout {
            Some(t) if self.started.elapsed() >= t => Err(self.time_exceeded()),
            _ => Ok(()),
        }
    }

    /// The error for a run whose time ran out.
    pub fn time_exceeded(&self) -> Exceeded {
        let limit = self.limits.timeout.unwrap_or_default().as_secs_f64();
        Exceeded::new(
            "time",
            self.started.elapsed().as_secs_f64().max(limit),
            limit,
            " (seconds)",
        )
    }

    /// Checks a model call before it is made, and caps `req.max_tokens` at the output tokens
    /// that remain. On success the call is counted. `model` names the model in messages.
    pub fn admit_llm(
        &mut self,
        req: &mut ModelRequest,
        price: Option<&Price>,
        model: &str,
    ) -> Result<(), Exceeded> {
        self.check_time()?;
        let l = &self.limits;
        let s = &self.spent;
        if let Some(max) = l.max_llm_calls {
            if s.llm_calls >= max {
                return Err(Exceeded::new(
                    "llm_calls",
                    s.llm_calls as f64,
                    max as f64,
                    "",
                ));
            }
        }
        let est_in = estimate_input_tokens(req);
        let mut cap: Option<u64> = None;
        let mut lower = |c: u64| cap = Some(cap.map_or(c, |old: u64| old.min(c)));
        if let Some(max) = l.max_input_tokens {
            if s.input_tokens + est_in > max {
                return Err(Exceeded::new(
                    "input_tokens",
                    s.input_tokens as f64,
                    max as f64,
                    &format!(" (this call needs about {est_in} more)"),
                ));
            }
        }
        if let Some(max) = l.max_output_tokens {
            let left = max.saturating_sub(s.output_tokens);
            if left == 0 {
                return Err(Exceeded::new(
                    "output_tokens",
                    s.output_tokens as f64,
                    max as f64,
                    "",
                ));
            }
            lower(left);
        }
        if let Some(max) = l.max_tokens {
            let used = s.input_tokens + s.output_tokens;
            let left = max.saturating_sub(used + est_in);
            if left == 0 {
                return Err(Exceeded::new(
                    "tokens",
                    used as f64,
                    max as f64,
                    &format!(" (this call needs about {est_in} input tokens)"),
                ));
            }
            lower(left);
        }
        if let Some(max) = l.max_cost {
            let Some(p) = price else {
                // Fail closed: without a price the cost of the call cannot be bounded.
                return Err(Exceeded {
                    budget: "cost",
                    used: s.cost,
                    limit: max,
                    message: format!(
                        "a cost budget is set but model {model} has no price, so its cost \
                         cannot be bounded; give it `price = {{ input = …, output = … }}` \
                         (USD per million tokens) in aivm.toml"
                    ),
                });
            };
            let left = max - s.cost;
            let input_cost = est_in as f64 * p.input / 1e6;
            if left <= 0.0 || input_cost >= left {
                return Err(Exceeded::new("cost", s.cost, max, " (USD)"));
            }
            if p.output > 0.0 {
                let out = ((left - input_cost) * 1e6 / p.output).floor();
                if out < 1.0 {
                    return Err(Exceeded::new("cost", s.cost, max, " (USD)"));
                }
                lower(out.min(u64::MAX as f64) as u64);
            }
        }
        if let Some(c) = cap {
            req.max_tokens = Some(req.max_tokens.map_or(c, |m| m.min(c)));
        }
        self.spent.llm_calls += 1;
        Ok(())
    }

    /// Adds what a model call consumed.
    pub fn charge_llm(&mut self, usage: &Usage, cost: Option<f64>) {
        self.spent.input_tokens = self.spent.input_tokens.saturating_add(usage.input_tokens);
        self.spent.output_tokens = self.spent.output_tokens.saturating_add(usage.output_tokens);
        match cost {
            Some(c) => self.spent.cost += c,
            None => self.spent.unpriced_calls += 1,
        }
    }

    /// Checks and counts one tool call.
    pub fn admit_tool(&mut self) -> Result<(), Exceeded> {
        self.check_time()?;
        if let Some(max) = self.limits.max_tool_calls {
            if self.spent.tool_calls >= max {
                return Err(Exceeded::new(
                    "tool_calls",
                    self.spent.tool_calls as f64,
                    max as f64,
                    "",
                ));
            }
        }
        self.spent.tool_calls += 1;
        Ok(())
    }

    /// Counts what a replayed journal records, without checking (replay reproduces the
    /// recorded outcomes, budget errors included).
    pub fn record_replayed(&mut self, llm_call: bool, tool_call: bool) {
        if llm_call {
            self.spent.llm_calls += 1;
        }
        if tool_call {
            self.spent.tool_calls += 1;
        }
    }
}

/// A cautious guess at a request's input tokens before the provider counts them: a token per
/// four bytes of everything sent, plus a few per message.
pub fn estimate_input_tokens(req: &ModelRequest) -> u64 {
    let mut bytes = 0usize;
    for m in &req.messages {
        bytes += m.content.len() + 16;
        for c in &m.tool_calls {
            bytes += c.name.len() + c.arguments.len() + c.id.len();
        }
    }
    for t in &req.tools {
        bytes += t.name.len() + t.description.len() + t.parameters.to_string().len();
    }
    if let Some(o) = &req.output {
        bytes += o.schema.to_string().len();
    }
    bytes.div_ceil(4) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::llm::{Message, Role};

    fn req(text: &str) -> ModelRequest {
        ModelRequest::new("m", vec![Message::text(Role::User, text)])
    }

    fn usage(i: u64, o: u64) -> Usage {
        Usage {
            input_tokens: i,
            output_tokens: o,
        }
    }

    #[test]
    fn llm_calls_are_counted_and_refused_past_the_limit() {
        let mut b = Budget::new(BudgetLimits {
            max_llm_calls: Some(2),
            ..BudgetLimits::default()
        });
        assert!(b.admit_llm(&mut req("a"), None, "m").is_ok());
        assert!(b.admit_llm(&mut req("a"), None, "m").is_ok());
        let e = b.admit_llm(&mut req("a"), None, "m").unwrap_err();
        assert_eq!((e.budget, e.used, e.limit), ("llm_calls", 2.0, 2.0));
        assert_eq!(b.spent().llm_calls, 2, "a refused call is not counted");
        let he = e.to_host_error();
        assert_eq!(he.kind, "BudgetExceeded");
        assert_eq!(
            e.payload().to_json(),
            serde_json::json!({"budget": "llm_calls", "used": 2, "limit": 2})
        );
    }

    #[test]
    fn output_tokens_cap_max_tokens_then_refuse() {
        let mut b = Budget::new(BudgetLimits {
            max_output_tokens: Some(100),
            ..BudgetLimits::default()
        });
        let mut r = req("hello");
        r.max_tokens = Some(500);
        b.admit_llm(&mut r, None, "m").unwrap();
        assert_eq!(r.max_tokens, Some(100), "capped to what remains");
        b.charge_llm(&usage(10, 70), None);
        let mut r = req("hello");
        b.admit_llm(&mut r, None, "m").unwrap();
        assert_eq!(
            r.max_tokens,
            Some(30),
            "a request without max_tokens gets one"
        );
        b.charge_llm(&usage(10, 30), None);
        let e = b.admit_llm(&mut req("x"), None, "m").unwrap_err();
        assert_eq!((e.budget, e.used, e.limit), ("output_tokens", 100.0, 100.0));
    }

    #[test]
    fn input_and_total_tokens_count_the_estimate_of_the_next_call() {
        let mut b = Budget::new(BudgetLimits {
            max_input_tokens: Some(50),
            ..BudgetLimits::default()
        });
        let big = "x".repeat(400); // about 104 tokens
        let e = b.admit_llm(&mut req(&big), None, "m").unwrap_err();
        assert_eq!(e.budget, "input_tokens");
        assert!(e.message.contains("needs about"), "{}", e.message);
        b.admit_llm(&mut req("small"), None, "m").unwrap();

        let mut t = Budget::new(BudgetLimits {
            max_tokens: Some(40),
            ..BudgetLimits::default()
        });
        let mut r = req("four");
        t.admit_llm(&mut r, None, "m").unwrap();
        let est = estimate_input_tokens(&r);
        assert_eq!(r.max_tokens, Some(40 - est));
        t.charge_llm(&usage(20, 20), None);
        assert_eq!(
            t.admit_llm(&mut req("x"), None, "m").unwrap_err().budget,
            "tokens"
        );
    }

    #[test]
    fn cost_fails_closed_without_a_price_and_caps_output_with_one() {
        let limits = BudgetLimits {
            max_cost: Some(0.01),
            ..BudgetLimits::default()
        };
        let mut b = Budget::new(limits.clone());
        let e = b.admit_llm(&mut req("hi"), None, "openai:gpt").unwrap_err();
        assert_eq!(e.budget, "cost");
        assert!(e.message.contains("has no price"), "{}", e.message);
        assert_eq!(b.spent().llm_calls, 0);

        // $1 per million in, $10 per million out: $0.01 buys at most 1000 output tokens.
        let price = Price {
            input: 1.0,
            output: 10.0,
        };
        let mut r = req("hi");
        b.admit_llm(&mut r, Some(&price), "m").unwrap();
        let cap = r.max_tokens.unwrap();
        assert!(cap < 1000 && cap > 990, "{cap}");
        let u = usage(1000, 900);
        let cost = price.cost(&u);
        assert!((cost - 0.01).abs() < 1e-12);
        b.charge_llm(&u, Some(cost));
        let e = b.admit_llm(&mut req("hi"), Some(&price), "m").unwrap_err();
        assert_eq!(e.budget, "cost");
        // Without a cost budget, a model without a price is fine.
        let mut free = Budget::new(BudgetLimits::default());
        free.admit_llm(&mut req("hi"), None, "m").unwrap();
    }

    #[test]
    fn tool_calls_and_time() {
        let mut b = Budget::new(BudgetLimits {
            max_tool_calls: Some(1),
            timeout: Some(Duration::from_millis(30)),
            ..BudgetLimits::default()
        });
        b.admit_tool().unwrap();
        assert_eq!(b.admit_tool().unwrap_err().budget, "tool_calls");
        std::thread::sleep(Duration::from_millis(40));
        let e = b.admit_llm(&mut req("x"), None, "m").unwrap_err();
        assert_eq!(e.budget, "time");
        assert!(e.used >= e.limit);
    }
}
