-- Lua's `s = s .. x` is quadratic; the idiomatic linear form is a buffer table.
local parts = {}
for i = 0, 1000000 - 1 do
  parts[#parts + 1] = tostring(i)
  parts[#parts + 1] = ","
end
local s = table.concat(parts)
print(#s)
