// Builds a string of 1M pieces by appending (the Rust peer of strings.ail).
use std::fmt::Write;

fn main() {
    let mut s = String::new();
    for i in 0..1_000_000 {
        let _ = write!(s, "{i},");
    }
    println!("{}", s.chars().count());
}
