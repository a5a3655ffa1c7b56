-- ms(x): a number (milliseconds, a count) as an integer string, with no
-- exponent and no fraction whatever its size (Lua's own conversion is
-- "%.14g"), for hash fields and replies that Python reads back as integers.
-- First in the batch script: the files after it use it.
local function ms(x) return string.format('%.0f', x) end
