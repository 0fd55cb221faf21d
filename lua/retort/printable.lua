-- Text that came from a file, made safe to print on a terminal: escape(s) writes the bytes a terminal
-- would act on as \xNN. Those are the C0 controls (bytes 0x00-0x1f: ESC starts the sequences that clear
-- the screen, move the cursor or retitle the window; also newline and tab, so that one value is one
-- line), DEL (0x7f), and the C1 controls U+0080-U+009F in their UTF-8 form (0xc2 0x80-0x9f: CSI is
-- U+009B, which some terminals honour like ESC [). Every other byte is kept, so UTF-8 text prints as
-- it is. The core's HDF5 messages follow the same rule (core/src/h5.c, escape_controls).
--
--   local printable = require "retort.printable"
--   print(printable.escape(attrs.teacher))      -- "\x1b[2J" instead of a cleared screen
--   error("version should be an integer, found " .. printable.value(v))   -- "found the string \"x\""
local M = {}

local function hex(c) return ("\\x%02x"):format(c:byte()) end

--- escape(s): s (a string, or anything tostring accepts) with control bytes as \xNN.
function M.escape(s)
   s = tostring(s)
   s = s:gsub("\194[\128-\159]", function(c) return hex(c:sub(1, 1)) .. hex(c:sub(2, 2)) end)
   return (s:gsub("[%z\1-\31\127]", hex))
end

--- value(v): a value read from a file described for an error message ("found ..."): its kind and, for a
--- scalar, the value (escaped), never a table's address.
function M.value(v)
   if v == nil then return "nothing" end
   if type(v) == "string" then return ("the string \"%s\""):format(M.escape(v)) end
   if type(v) == "table" then return ("a list of %d value(s)"):format(#v) end
   return ("%s %s"):format(math.type(v) or type(v), M.escape(v))
end

return M
