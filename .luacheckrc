-- luacheck (Debian's lua-check) over retort's Lua: the test command runs `luacheck .` from the repo root.
-- Globals are errors everywhere (retort defines none); busted's are allowed in the specs only.
std = "lua54"
max_line_length = 120
-- `self` unused in a method is the method's signature, not a mistake
self = false
-- distill_cases.lua is data written by tests/fixtures/gen_distill.py (one case per line), not code
exclude_files = {"build*/**", ".gpu/**", "tests/fixtures/distill_cases.lua"}
files["tests/lua/**/*_spec.lua"] = {std = "+busted"}
files["tests/lua/helper.lua"] = {std = "+busted"}
