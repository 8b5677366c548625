// Sorts 1M pseudo-random ints (the Rust peer of sort.ail).
fn main() {
    let mut xs = Vec::new();
    let mut seed: i64 = 42;
    for _ in 0..1_000_000 {
        seed = (seed * 1103515245 + 12345) % 2147483648;
        xs.push(seed);
    }
    xs.sort();
    println!("{}", xs[0]);
    println!("{}", xs[500000]);
    println!("{}", xs[999999]);
}
