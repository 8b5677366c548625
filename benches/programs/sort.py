def main():
    xs = []
    seed = 42
    for i in range(1000000):
        seed = (seed * 1103515245 + 12345) % 2147483648
        xs.append(seed)
    ys = sorted(xs)
    print(ys[0])
    print(ys[500000])
    print(ys[999999])

main()
