-- Metrics files: one row per record, as CSV or JSON lines, flushed as they are written so a
-- run that dies keeps what it measured.
--
--   local metrics = require "retort.train.metrics"
--   local m = metrics.open("runs/x/metrics.csv")          -- format from the extension (.csv, .jsonl)
--   m:write{epoch = 1, split = "train", loss = 0.5, acc = 0.9}
--   m:close()
--   metrics.read("runs/x/metrics.csv")                     -- list of rows (numbers converted back)
local metrics = {}
local Writer = {}
Writer.__index = Writer

local function json_value(v)
   local t = type(v)
   if t == "number" then
      if v ~= v or v == math.huge or v == -math.huge then return "null" end
      if math.type(v) == "integer" then return tostring(v) end
      return ("%.10g"):format(v)
   elseif t == "boolean" then
      return tostring(v)
   end
   return '"' .. tostring(v):gsub('[%c"\\]', function(c)
      return ({['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\t"] = "\\t"})[c] or ("\\u%04x"):format(c:byte())
   end) .. '"'
end

local function csv_value(v)
   if type(v) == "number" then
      return math.type(v) == "integer" and tostring(v) or ("%.10g"):format(v)
   end
   local s = tostring(v)
   if s:find('[,"\n]') then s = '"' .. s:gsub('"', '""') .. '"' end
   return s
end

--- Open a metrics file for appending (append = true) or writing. Columns of a CSV file are fixed
--- by `columns` or by the first row (sorted keys); later rows may leave columns empty.
function metrics.open(path, opts)
   opts = opts or {}
   local format = opts.format or (path:match("%.jsonl?$") and "jsonl" or "csv")
   if format ~= "csv" and format ~= "jsonl" then
      error(("metrics.open: unknown format '%s' (expected csv or jsonl)"):format(format), 2)
   end
   local columns, has_header = opts.columns, false
   if opts.append and format == "csv" then -- keep the existing header
      local h = io.open(path, "r")
      if h then
         local header = h:read("l")
         h:close()
         if header and header ~= "" then
            columns, has_header = {}, true
            for name in header:gmatch("[^,]+") do columns[#columns + 1] = name end
         end
      end
   end
   local f, err = io.open(path, opts.append and "a" or "w")
   if not f then error(("metrics.open: cannot write %s: %s"):format(path, err), 2) end
   -- a header is written unless the file we append to already starts with one
   return setmetatable({file = f, format = format, columns = columns, path = path, header_written = has_header},
                       Writer)
end

function Writer:write(row)
   if self.format == "jsonl" then
      local keys = {}
      for k in pairs(row) do keys[#keys + 1] = k end
      table.sort(keys)
      local parts = {}
      for _, k in ipairs(keys) do parts[#parts + 1] = json_value(k) .. ":" .. json_value(row[k]) end
      self.file:write("{", table.concat(parts, ","), "}\n")
   else
      if not self.columns then
         self.columns = {}
         for k in pairs(row) do self.columns[#self.columns + 1] = k end
         table.sort(self.columns)
      end
      if not self.header_written then
         self.file:write(table.concat(self.columns, ","), "\n")
         self.header_written = true
      end
      local cells = {}
      for i, k in ipairs(self.columns) do cells[i] = row[k] == nil and "" or csv_value(row[k]) end
      self.file:write(table.concat(cells, ","), "\n")
   end
   self.file:flush()
end

function Writer:close()
   if self.file then self.file:close() end
   self.file = nil
end

--- resumeAt(path, nextEpoch, lastRow): make a CSV metrics file agree with the checkpoint a run
--- resumes from. The checkpoint is saved before its epoch's row is written, so a kill between the
--- two leaves the row missing (it is taken from lastRow, which the checkpoint carries), and a kill
--- after an older checkpoint leaves rows of epochs that will run again (dropped: rows with
--- epoch >= nextEpoch). Rewritten atomically (a temporary file renamed over it); lines kept verbatim.
function metrics.resumeAt(path, nextEpoch, lastRow)
   local f = io.open(path, "r")
   if not f then return end
   local header = f:read("l")
   if not header or header == "" then f:close() return end
   local columns, epoch_col = {}, nil
   for name in header:gmatch("[^,]+") do
      columns[#columns + 1] = name
      if name == "epoch" then epoch_col = #columns end
   end
   local lines, has_last = {header}, false
   for line in f:lines() do
      local cells = {}
      for cell in (line .. ","):gmatch("([^,]*),") do cells[#cells + 1] = cell end
      local e = epoch_col and tonumber(cells[epoch_col])
      if e and e < nextEpoch then
         lines[#lines + 1] = line
         if lastRow and e == lastRow.epoch then has_last = true end
      elseif not e and line ~= "" then
         lines[#lines + 1] = line -- not an epoch row: not ours to judge
      end
   end
   f:close()
   if lastRow and not has_last and lastRow.epoch and lastRow.epoch < nextEpoch then
      local cells = {}
      for i, k in ipairs(columns) do cells[i] = lastRow[k] == nil and "" or csv_value(lastRow[k]) end
      lines[#lines + 1] = table.concat(cells, ",")
   end
   local tmp = path .. ".tmp"
   local out, err = io.open(tmp, "w")
   if not out then error(("metrics.resumeAt: cannot write %s: %s"):format(tmp, err), 2) end
   out:write(table.concat(lines, "\n"), "\n")
   out:close()
   local ok, rerr = os.rename(tmp, path)
   if not ok then error(("metrics.resumeAt: cannot replace %s: %s"):format(path, rerr), 2) end
end

--- Read a CSV metrics file back as a list of rows (numeric cells become numbers).
function metrics.read(path)
   local f, err = io.open(path, "r")
   if not f then error(("metrics.read: cannot read %s: %s"):format(path, err), 2) end
   local header = f:read("l")
   local columns = {}
   for name in (header or ""):gmatch("[^,]+") do columns[#columns + 1] = name end
   local rows = {}
   for line in f:lines() do
      local row, i = {}, 1
      for cell in (line .. ","):gmatch("([^,]*),") do
         if cell ~= "" then row[columns[i]] = tonumber(cell) or cell end
         i = i + 1
      end
      rows[#rows + 1] = row
   end
   f:close()
   return rows
end

return metrics
