-- Plots of training metrics as self-contained SVG (no scripts, no external fonts or files: a
-- browser, an image viewer or a README opens it as is). Pure Lua.
--
--   local plot = require("retort").plot
--   plot.write({"runs/x/metrics.csv"})                          -- writes runs/x/metrics.svg
--   plot.write({"runs/a/metrics.csv", "runs/b/metrics.csv"}, {out = "ab.svg", title = "a vs b"})
--   local svg = plot.svg({"runs/x/metrics.csv"})                -- the text
--   plot.svg({{label = "mine", rows = result.history}})          -- rows in memory (train.fit's history)
--   retort plot runs/x/metrics.csv [more.csv ...] [--out=plot.svg]     (lua/retort/plot_cli.lua)
--
-- What is drawn, against the epoch (the row number when there is no epoch column), one panel per
-- kind of scale, each with its own axes, ticks, labels and legend:
--   loss           train_loss, test_loss (and any other *_loss column)
--   accuracy       train_acc, test_acc, test_top5 (and any other *_acc / *_top<k> column)
--   loss terms     every other train_<term> column: the Distiller's ce, kl, kd, per-pair terms, total
--   learning rate  lr
-- seconds and examples_per_s are not drawn. A panel appears when one of its columns has a number.
-- Each column of each run is one <path> (inside a <g class="series"> that names the run and the
-- column in its <title> and data- attributes, with a marker per point when there are at most 60);
-- a cell that is empty, not a number, NaN or infinite is skipped: the line breaks there (a new
-- "M" subpath) rather than drawing through a value that does not exist. With one run the columns
-- take the colours; with several runs (comparing them) each run takes a colour and the columns
-- of a panel take dash patterns. Axes are linear, from "nice" ticks (1, 2 or 5 times a power of
-- ten) that enclose the data; a constant series gets a range around its value. All text is XML
-- escaped (and bytes that are not UTF-8 are replaced), so any file name is safe in the title.
local metrics = require "retort.train.metrics"
local options = require "retort.options"

local plot = {}

local PANELS = {
   {key = "loss", title = "loss", ylabel = "loss"},
   {key = "accuracy", title = "accuracy", ylabel = "accuracy"},
   {key = "terms", title = "loss terms (train)", ylabel = "value"},
   {key = "lr", title = "learning rate", ylabel = "lr"},
}

local PALETTE = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf"}
local DASHES = {"", "7 4", "2 3", "10 3 2 3", "4 4 1 4"}
local MAX_MARKERS = 60 -- points per series drawn with a marker

-- geometry (px): a panel is a plot area with margins for tick labels, axis labels and the legend
local PLOT_W, PLOT_H = 600, 220
local MARGIN_L, MARGIN_T, MARGIN_B = 72, 34, 48
local TITLE_H = 44
local CHAR_W = 7.2 -- approximate width of a 12px sans-serif character, to size the legend

-- order of the known columns inside their panel; others follow alphabetically
local ORDER = {train_loss = 1, test_loss = 2, train_acc = 1, test_acc = 2, test_top5 = 3}

--- panelOf(column): "loss", "accuracy", "terms", "lr" or nil (not drawn).
function plot.panelOf(column)
   if column == "lr" then return "lr" end
   if column:match("_loss$") then return "loss" end
   if column:match("_acc$") or column:match("_top%d+$") then return "accuracy" end
   if column:match("^train_.") then return "terms" end
   return nil
end

local function finite(v) return type(v) == "number" and v == v and v ~= math.huge and v ~= -math.huge end

--- escape(s): s as XML character data or attribute text.
function plot.escape(s)
   s = tostring(s)
   if not utf8.len(s) then s = s:gsub("[\128-\255]", "?") end
   s = s:gsub("[%z\1-\8\11\12\14-\31]", "?")
   return (s:gsub("[&<>\"']", {["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&apos;"}))
end
local esc = plot.escape

--- read(path): a run from a metrics CSV: {path =, label = its directory, rows = {...}}. Errors name
--- the file and say what is wrong (missing, a directory, empty).
function plot.read(path)
   if type(path) ~= "string" then
      error(("bad argument #1 to 'read' (path expected, got %s)"):format(type(path)), 2)
   end
   local f, err = io.open(path, "r")
   if not f then error(("cannot read %s"):format(err), 0) end
   local probe, perr = f:read(0)
   f:close()
   if probe == nil then
      error(perr and ("cannot read %s: %s"):format(path, perr)
                 or ("%s is empty (expected a metrics.csv header)"):format(path), 0)
   end
   local rows = metrics.read(path)
   local dir = path:match("^(.*)/[^/]*$")
   return {path = path, label = (dir and dir ~= "" and dir ~= ".") and dir or path, rows = rows}
end

-- Sources (paths or {label =, rows =} tables) as runs, with distinct labels.
local function runs_of(sources)
   if type(sources) == "string" then sources = {sources} end
   if type(sources) ~= "table" or #sources == 0 then
      error("plot: expected a list of metrics.csv paths (or {label =, rows =} tables)", 3)
   end
   local runs, count = {}, {}
   for i, s in ipairs(sources) do
      local run
      if type(s) == "string" then
         run = plot.read(s)
      elseif type(s) == "table" and type(s.rows) == "table" then
         run = {label = tostring(s.label or ("run " .. i)), rows = s.rows, path = s.label}
      else
         error(("plot: source %d must be a path or a table {label =, rows =}, got %s"):format(i, type(s)), 3)
      end
      runs[i] = run
      count[run.label] = (count[run.label] or 0) + 1
   end
   for i, run in ipairs(runs) do -- two CSVs in one directory: tell them apart by their paths
      if count[run.label] > 1 then run.label = run.path or (run.label .. " #" .. i) end
   end
   return runs
end

-- Panels with their series: {panel spec, series = {{run, column, points = {{x, y} or false (gap)}}}}.
local function collect(runs)
   local xname = "epoch"
   for _, run in ipairs(runs) do
      for _, row in ipairs(run.rows) do
         if row.epoch == nil then xname = "row" end
      end
   end
   local by_panel = {}
   for ri, run in ipairs(runs) do
      local columns = {}
      for _, row in ipairs(run.rows) do
         for k in pairs(row) do
            if type(k) == "string" and not columns[k] and plot.panelOf(k) then columns[k] = true end
         end
      end
      local names = {}
      for k in pairs(columns) do names[#names + 1] = k end
      table.sort(names, function(a, b)
         local oa, ob = ORDER[a] or 99, ORDER[b] or 99
         if oa ~= ob then return oa < ob end
         return a < b
      end)
      for _, col in ipairs(names) do
         local points, n = {}, 0
         for i, row in ipairs(run.rows) do
            local x = xname == "epoch" and row.epoch or i
            local y = row[col]
            if finite(x) and finite(y) then
               points[#points + 1] = {x, y}
               n = n + 1
            elseif #points > 0 and points[#points] then
               points[#points + 1] = false -- a gap
            end
         end
         if n > 0 then
            local key = plot.panelOf(col)
            by_panel[key] = by_panel[key] or {}
            table.insert(by_panel[key], {run = run, runIndex = ri, column = col, points = points, count = n})
         end
      end
   end
   local panels = {}
   for _, spec in ipairs(PANELS) do
      if by_panel[spec.key] then panels[#panels + 1] = {spec = spec, series = by_panel[spec.key]} end
   end
   return panels, xname
end

-- "Nice" ticks covering [lo, hi]: steps of 1, 2 or 5 times a power of ten, about `n` of them.
-- integer = true keeps steps whole (epochs). Returns lo', hi', step, ticks.
function plot.ticks(lo, hi, n, integer)
   n = n or 5
   if lo == hi then
      local pad = lo == 0 and 1 or math.abs(lo) * 0.1
      if integer then pad = math.max(1, math.ceil(pad)) end
      lo, hi = lo - pad, hi + pad
   end
   local raw = (hi - lo) / math.max(1, n - 1)
   local mag = 10 ^ math.floor(math.log(raw, 10))
   local step
   for _, m in ipairs({1, 2, 5, 10}) do
      step = m * mag
      if step >= raw * (1 - 1e-9) then break end
   end
   if integer then step = math.max(1, math.floor(step + 0.5)) end
   local a, b = math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step
   local ticks = {}
   for i = 0, math.floor((b - a) / step + 0.5) do ticks[#ticks + 1] = a + i * step end
   return a, b, step, ticks
end

local function tick_label(v, step)
   if v == 0 then return "0" end
   local d = -math.floor(math.log(step, 10) + 1e-9)
   if math.abs(v) >= 1e5 or step < 1e-4 then return ("%.3g"):format(v) end
   return ("%." .. math.max(0, d) .. "f"):format(v)
end

local function num(v) return ("%.2f"):format(v) end

-- One panel at vertical offset top; returns the SVG lines.
local function draw_panel(panel, top, xname, xr, several)
   local out = {}
   local x0, x1 = MARGIN_L, MARGIN_L + PLOT_W
   local y0, y1 = top + MARGIN_T, top + MARGIN_T + PLOT_H
   local lo, hi = math.huge, -math.huge
   for _, s in ipairs(panel.series) do
      for _, p in ipairs(s.points) do
         if p then lo, hi = math.min(lo, p[2]), math.max(hi, p[2]) end
      end
   end
   local ylo, yhi, ystep, yticks = plot.ticks(lo, hi, 5)
   local function px(x) return x0 + (x - xr.lo) / (xr.hi - xr.lo) * (x1 - x0) end
   local function py(y) return y1 - (y - ylo) / (yhi - ylo) * (y1 - y0) end
   out[#out + 1] = ('<g class="panel" data-panel="%s">'):format(panel.spec.key)
   out[#out + 1] = ('<text class="panel-title" x="%s" y="%s">%s</text>'):format(num(x0), num(top + 22),
      esc(panel.spec.title))
   out[#out + 1] = ('<rect class="frame" x="%s" y="%s" width="%s" height="%s"/>'):format(num(x0), num(y0),
      num(x1 - x0), num(y1 - y0))
   for _, v in ipairs(yticks) do
      local y = py(v)
      out[#out + 1] = ('<g class="ytick" data-value="%.17g"><line class="grid" x1="%s" y1="%s" x2="%s" y2="%s"/>'
         .. '<text x="%s" y="%s" text-anchor="end">%s</text></g>'):format(v, num(x0), num(y), num(x1), num(y),
         num(x0 - 6), num(y + 4), esc(tick_label(v, ystep)))
   end
   for _, v in ipairs(xr.ticks) do
      local x = px(v)
      out[#out + 1] = ('<g class="xtick" data-value="%.17g"><line class="grid" x1="%s" y1="%s" x2="%s" y2="%s"/>'
         .. '<text x="%s" y="%s" text-anchor="middle">%s</text></g>'):format(v, num(x), num(y0), num(x), num(y1),
         num(x), num(y1 + 16), esc(tick_label(v, xr.step)))
   end
   out[#out + 1] = ('<text class="axis-label" x="%s" y="%s" text-anchor="middle">%s</text>'):format(
      num((x0 + x1) / 2), num(y1 + 36), esc(xname))
   out[#out + 1] = ('<text class="axis-label" x="%s" y="%s" text-anchor="middle" '
      .. 'transform="rotate(-90 %s %s)">%s</text>'):format(num(x0 - 54), num((y0 + y1) / 2), num(x0 - 54),
      num((y0 + y1) / 2), esc(panel.spec.ylabel))
   -- series, then the legend at the right of the plot area
   local col_index = {}
   for _, s in ipairs(panel.series) do
      if not col_index[s.column] then
         col_index[#col_index + 1] = s.column
         col_index[s.column] = #col_index
      end
   end
   for i, s in ipairs(panel.series) do
      local ci = col_index[s.column]
      local color = PALETTE[((several and s.runIndex or ci) - 1) % #PALETTE + 1]
      local dash = several and DASHES[(ci - 1) % #DASHES + 1] or ""
      local name = several and (s.run.label .. ": " .. s.column) or s.column
      s.color, s.dash, s.name = color, dash, name
      local d, pen_up = {}, true
      for _, p in ipairs(s.points) do
         if not p then
            pen_up = true
         else
            d[#d + 1] = (pen_up and "M" or "L") .. num(px(p[1])) .. " " .. num(py(p[2]))
            pen_up = false
         end
      end
      out[#out + 1] = ('<g class="series" data-run="%s" data-column="%s" stroke="%s" fill="%s">'):format(
         esc(s.run.label), esc(s.column), color, color)
      out[#out + 1] = ("<title>%s</title>"):format(esc(name))
      out[#out + 1] = ('<path class="line" d="%s"%s/>'):format(table.concat(d, " "),
         dash ~= "" and (' stroke-dasharray="%s"'):format(dash) or "")
      if s.count <= MAX_MARKERS then
         for _, p in ipairs(s.points) do
            if p then
               out[#out + 1] = ('<circle cx="%s" cy="%s" r="2.5"><title>%s, %s %s: %.6g</title></circle>'):format(
                  num(px(p[1])), num(py(p[2])), esc(name), esc(xname), tostring(p[1]), p[2])
            end
         end
      end
      out[#out + 1] = "</g>"
      local ly = y0 + 8 + (i - 1) * 18
      out[#out + 1] = ('<g class="legend-entry" data-column="%s"><line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s"%s/>'
         .. '<text x="%s" y="%s">%s</text></g>'):format(esc(s.column), num(x1 + 14), num(ly), num(x1 + 40), num(ly),
         color,
         dash ~= "" and (' stroke-dasharray="%s"'):format(dash) or "", num(x1 + 46), num(ly + 4), esc(name))
   end
   out[#out + 1] = "</g>"
   return out
end

local KNOWN = {title = true, out = true}

--- svg(sources [, opts]): the SVG text. sources: metrics.csv paths, or tables {label =, rows =}
--- (rows as train.fit's result.history); opts.title replaces the default title (the run
--- directories). Also returns {panels = n, series = n}.
function plot.svg(sources, opts)
   opts = opts or {}
   options.check("plot.svg", opts, KNOWN, 2)
   local runs = runs_of(sources)
   local panels, xname = collect(runs)
   if #panels == 0 then
      local names = {}
      for _, r in ipairs(runs) do names[#names + 1] = r.path or r.label end
      error(("plot: nothing to plot in %s (no loss, accuracy, train_<term> or lr column with a number)")
         :format(table.concat(names, ", ")), 0)
   end
   local several = #runs > 1
   -- x range shared by every panel
   local xlo, xhi = math.huge, -math.huge
   local nseries, longest = 0, 0
   for _, p in ipairs(panels) do
      for _, s in ipairs(p.series) do
         nseries = nseries + 1
         local name = several and (s.run.label .. ": " .. s.column) or s.column
         longest = math.max(longest, utf8.len(name) or #name)
         for _, pt in ipairs(s.points) do
            if pt then xlo, xhi = math.min(xlo, pt[1]), math.max(xhi, pt[1]) end
         end
      end
   end
   local xr = {}
   xr.lo, xr.hi, xr.step, xr.ticks = plot.ticks(xlo, xhi, math.min(11, math.max(2, xhi - xlo + 1)), true)
   local legend_w = math.ceil(60 + longest * CHAR_W)
   local width = MARGIN_L + PLOT_W + legend_w
   local panel_h = MARGIN_T + PLOT_H + MARGIN_B
   for _, p in ipairs(panels) do panel_h = math.max(panel_h, MARGIN_T + 16 + #p.series * 18) end
   local height = TITLE_H + #panels * panel_h
   local labels = {}
   for _, r in ipairs(runs) do labels[#labels + 1] = r.label end
   local title = opts.title or table.concat(labels, " vs ")
   local out = {
      '<?xml version="1.0" encoding="UTF-8"?>',
      ('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">'):format(width, height,
         width, height),
      ("<title>%s</title>"):format(esc(title)),
      "<style>",
      "text { font-family: sans-serif; font-size: 12px; fill: #222; }",
      ".title { font-size: 16px; font-weight: bold; } .panel-title { font-size: 13px; font-weight: bold; }",
      ".frame { fill: none; stroke: #444; } .grid { stroke: #ddd; } .line { fill: none; stroke-width: 1.8; }",
      ".legend-entry line { stroke-width: 2.5; }",
      "</style>",
      ('<rect width="%d" height="%d" fill="#fff"/>'):format(width, height),
      ('<text class="title" x="%s" y="26">%s</text>'):format(num(MARGIN_L), esc(title)),
   }
   for i, p in ipairs(panels) do
      for _, line in ipairs(draw_panel(p, TITLE_H + (i - 1) * panel_h, xname, xr, several)) do
         out[#out + 1] = line
      end
   end
   out[#out + 1] = "</svg>"
   return table.concat(out, "\n") .. "\n", {panels = #panels, series = nseries}
end

--- defaultOut(sources): where write() puts the plot: metrics.svg next to the one CSV, compare.svg
--- next to the first of several.
function plot.defaultOut(sources)
   if type(sources) == "string" then sources = {sources} end
   local first = sources[1]
   local dir = type(first) == "string" and first:match("^(.*)/[^/]*$") or nil
   local name = #sources > 1 and "compare.svg" or "metrics.svg"
   return dir and dir ~= "" and (dir .. "/" .. name) or name
end

--- write(sources [, opts]): draws the plot and writes it to opts.out (default: defaultOut), under a
--- temporary name renamed when complete. Returns the path and {panels =, series =}.
function plot.write(sources, opts)
   opts = opts or {}
   options.check("plot.write", opts, KNOWN, 2)
   local svg, info = plot.svg(sources, {title = opts.title})
   local out = opts.out or plot.defaultOut(sources)
   local tmp = out .. ".tmp"
   local f, err = io.open(tmp, "w")
   if not f then error(("plot: cannot write %s"):format(err), 0) end
   local ok, werr = f:write(svg)
   f:close()
   if not ok then
      os.remove(tmp)
      error(("plot: cannot write %s: %s"):format(out, werr), 0)
   end
   local renamed, rerr = os.rename(tmp, out)
   if not renamed then
      os.remove(tmp)
      error(("plot: cannot write %s: %s"):format(out, rerr), 0)
   end
   return out, info
end

return plot
