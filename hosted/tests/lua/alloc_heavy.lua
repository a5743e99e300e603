-- An allocation-heavy Lua workload: many small and large tables, strings
-- built and thrown away, closures, coroutines and full collections. It
-- prints a checksum per phase and a total; nothing it prints depends on
-- addresses or on the order pairs() visits keys (string hashes are
-- seeded per run), so the output is the same under any allocator.

local MOD = 4294967291 -- a prime below 2^32
local total = 0

local function mix(h, x)
  return (h * 31 + x) % MOD
end

local function mixs(h, s)
  for i = 1, #s, 7 do
    h = mix(h, s:byte(i))
  end
  return mix(h, #s)
end

local function report(name, h)
  print(string.format("%-12s %10d", name, h))
  total = mix(total, h)
end

-- 1. Strings: formatted, concatenated, reversed, repeated, substituted.
do
  local h = 0
  local parts = {}
  for i = 1, 20000 do
    local s = string.format("item-%05d-%x", i, i * 2654435761 % 4294967296)
    parts[#parts + 1] = s:upper():reverse()
    if i % 1000 == 0 then
      local joined = table.concat(parts, ",")
      h = mixs(h, joined)
      h = mixs(h, (joined:gsub("[0-9]", "#")))
      parts = {}
    end
  end
  h = mixs(h, string.rep("abc", 5000, "-"))
  report("strings", h)
end

-- 2. Tables: arrays that grow and shrink, hashes with mixed keys, a tree.
do
  local h = 0
  for round = 1, 8 do
    local arr = {}
    for i = 1, 30000 do arr[i] = i * round end
    for i = 30000, 15001, -1 do arr[i] = nil end
    local sum = 0
    for i = 1, #arr do sum = sum + arr[i] end
    h = mix(h, sum % MOD)
    local map = {}
    for i = 1, 5000 do
      map["k" .. i] = {i, tostring(i), {i % 7}}
      map[i * 3] = i
    end
    local acc = 0
    for k, v in pairs(map) do
      if type(k) == "string" then acc = acc + v[1] + #v[2] + v[3][1]
      else acc = acc + v end
    end
    h = mix(h, acc % MOD)
  end
  local function tree(depth)
    if depth == 0 then return {leaf = true} end
    return {left = tree(depth - 1), right = tree(depth - 1), depth = depth}
  end
  local function count(t)
    if t.leaf then return 1 end
    return 1 + count(t.left) + count(t.right)
  end
  for d = 10, 15 do h = mix(h, count(tree(d))) end
  local sorted = {}
  for i = 1, 20000 do sorted[i] = (i * 7919) % 20011 end
  table.sort(sorted)
  for i = 1, #sorted, 97 do h = mix(h, sorted[i]) end
  report("tables", h)
end

-- 3. Closures: counters, a chain of composed functions, upvalues shared.
do
  local h = 0
  local counters = {}
  for i = 1, 5000 do
    local n = i
    counters[i] = function(step) n = n + step; return n end
  end
  for round = 1, 10 do
    for i = 1, #counters, 3 do h = mix(h, counters[i](round) % MOD) end
  end
  local f = function(x) return x end
  for i = 1, 200 do
    local g = f
    f = function(x) return g(x) + i end
  end
  h = mix(h, f(1))
  report("closures", h)
end

-- 4. Coroutines: generators yielding tables and strings.
do
  local h = 0
  local function gen(n)
    return coroutine.wrap(function()
      for i = 1, n do coroutine.yield({i, ("x"):rep(i % 64)}) end
    end)
  end
  for c = 1, 50 do
    for item in gen(400) do h = mix(h, item[1] + #item[2]) end
  end
  local cos = {}
  for i = 1, 300 do
    cos[i] = coroutine.create(function(a)
      local s = 0
      while true do s = s + a; a = coroutine.yield(s) end
    end)
  end
  for r = 1, 20 do
    for i = 1, #cos do
      local _, v = coroutine.resume(cos[i], r + i)
      h = mix(h, v % MOD)
    end
  end
  report("coroutines", h)
end

-- 5. Garbage: waves of garbage with full collections between them, weak
-- tables emptied by the collector.
do
  local h = 0
  for wave = 1, 12 do
    local keep = {}
    for i = 1, 20000 do
      local t = {wave, i, tostring(i * wave)}
      if i % 10 == 0 then keep[#keep + 1] = t end
    end
    collectgarbage("collect")
    local weak = setmetatable({}, {__mode = "v"})
    for i = 1, 2000 do weak[i] = {i} end
    collectgarbage("collect")
    local alive = 0
    for _ in pairs(weak) do alive = alive + 1 end
    h = mix(h, #keep + alive)
    for i = 1, #keep, 50 do h = mix(h, tonumber(keep[i][3]) % MOD) end
  end
  report("garbage", h)
end

-- 6. utf8 and big strings grown and shrunk (large reallocations).
do
  local h = 0
  local buf = {}
  for i = 1, 3000 do buf[#buf + 1] = utf8.char(0x3b1 + i % 24, 0x4e00 + i % 500) end
  local s = table.concat(buf)
  h = mix(h, utf8.len(s))
  for _, c in utf8.codes(s) do h = mix(h, c) end
  local big = ""
  for i = 1, 200 do big = big .. string.rep(string.char(65 + i % 26), 1000) end
  h = mixs(h, big)
  while #big > 1000 do big = big:sub(1, #big // 2) end
  h = mixs(h, big)
  report("utf8+big", h)
end

print(string.format("%-12s %10d", "total", total))
