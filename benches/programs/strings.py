def main():
    s = ""
    for i in range(1000000):
        # `s += x` is CPython's linear in-place append; `s = s + a + b` would be quadratic.
        s += str(i) + ","
    print(len(s))

main()
