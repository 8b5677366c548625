// Counts 2M words from a 1000-word vocabulary in a string-keyed map (the Rust peer of words.ail).
use std::collections::HashMap;

fn main() {
    let vocab: Vec<String> = (0..1000).map(|i| format!("word{i}")).collect();
    let mut counts: HashMap<&str, i64> = HashMap::new();
    let mut seed: i64 = 7;
    for _ in 0..2_000_000 {
        seed = (seed * 1103515245 + 12345) % 2147483648;
        let w = vocab[(seed % 1000) as usize].as_str();
        *counts.entry(w).or_insert(0) += 1;
    }
    println!("{}", counts.len());
    println!("{}", counts["word7"]);
}
