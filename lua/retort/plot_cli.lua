-- `retort plot`: draw one or more metrics.csv files as an SVG (lua/retort/plot.lua draws).
--
--   retort plot runs/x/metrics.csv                       -- writes runs/x/metrics.svg
--   retort plot runs/x                                   -- a run directory: its metrics.csv
--   retort plot runs/a/metrics.csv runs/b/metrics.csv --out=ab.svg --title="a vs b"
--
-- Exit status: 0 written; 1 a file that cannot be read, holds nothing to plot, or an output that
-- cannot be written; 2 a mistake on the command line (no file, an unknown option: with the
-- nearest known one suggested). Messages go to stderr as `retort plot: ...`.
local M = {}

local USAGE = [[
usage: retort plot METRICS.csv|RUN_DIR [MORE ...] [--out=FILE.svg] [--title=TEXT]
Draws loss, accuracy, the train_<term> loss terms and the learning rate against the epoch, one
panel each, as a self-contained SVG. Several files compare runs on one plot.
  --out=FILE     where to write (default: metrics.svg next to the CSV; compare.svg next to the
                 first CSV when there are several)
  --title=TEXT   the plot's title (default: the run directories)
  -h, --help     this help]]

local OWN = {out = true, title = true, help = true}

local function fail(status, msg)
   io.stderr:write("retort plot: ", tostring(msg), "\n")
   io.stderr:flush()
   os.exit(status)
end

-- A run directory stands for its metrics.csv.
local function csv_of(path)
   if not path:match("%.csv$") then
      local f = io.open(path .. "/metrics.csv", "r")
      if f then
         f:close()
         return path .. "/metrics.csv"
      end
   end
   return path
end

local function parse(args)
   return require("retort.cli_args").parse(args, {known = OWN, usage = USAGE, fail = fail, positional = csv_of})
end

function M.main(args)
   local o, files = parse(args or {})
   if #files == 0 then fail(2, "no metrics file given\n" .. USAGE) end
   local ok, out, info = pcall(require("retort.plot").write, files, {out = o.out, title = o.title})
   if not ok then fail(1, (tostring(out):gsub("^plot: ", ""))) end
   print(("wrote %s (%d panel%s, %d series)"):format(out, info.panels, info.panels == 1 and "" or "s", info.series))
end

return M
