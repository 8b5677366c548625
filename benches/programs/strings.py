def main():
    s = ""
    for i in range(1000000):
        s = s + str(i) + ","
    print(len(s))

main()
