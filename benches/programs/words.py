def main():
    vocab = ["word" + str(i) for i in range(1000)]
    counts = {}
    seed = 7
    for i in range(2000000):
        seed = (seed * 1103515245 + 12345) % 2147483648
        w = vocab[seed % 1000]
        counts[w] = counts.get(w, 0) + 1
    print(len(counts))
    print(counts["word7"])

main()
