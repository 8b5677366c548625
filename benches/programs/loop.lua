local sum = 0
for i = 0, 50000000 - 1 do
  sum = sum + i % 7
end
print(sum)
