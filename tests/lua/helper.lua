-- busted helper (--helper=tests/lua/helper.lua), loaded before every spec file: puts tests/lua/
-- on package.path so that specs can `require "support"` (shared helpers: tests/lua/support.lua).
local source = debug.getinfo(1, "S").source
local dir = source:match("^@(.*)/[^/]*$") or "tests/lua"
package.path = dir .. "/?.lua;" .. package.path
