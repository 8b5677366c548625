// A 50M-iteration integer loop (the Rust peer of loop.ail), overflow-checked like aivm's ints.
fn main() {
    let n = std::hint::black_box(50_000_000i64);
    let mut sum: i64 = 0;
    for i in 0..n {
        sum = sum.checked_add(i % 7).expect("overflow");
    }
    println!("{sum}");
}
