//! `aivm-fake-llm`: an OpenAI-compatible server for benchmarks (written in the next step).

fn main() {}
