local vocab = {}
for i = 0, 999 do
  vocab[i] = "word" .. i
end
local counts = {}
local distinct = 0
local seed = 7
for i = 1, 2000000 do
  seed = (seed * 1103515245 + 12345) % 2147483648
  local w = vocab[seed % 1000]
  local c = counts[w]
  if c == nil then
    distinct = distinct + 1
    counts[w] = 1
  else
    counts[w] = c + 1
  end
end
print(distinct)
print(counts["word7"])
