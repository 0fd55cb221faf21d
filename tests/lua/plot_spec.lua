-- retort.plot and `retort plot`: the SVG is checked from the outside. Python's xml.etree
-- (/usr/bin/python3) parses it (so it must be well-formed XML), reads every panel's axis ticks
-- from their drawn lines and printed labels, and maps each series' path vertices back to data
-- coordinates through the scale those ticks define; the spec compares them with the CSV cells,
-- read here with a plain split (not with the reader plot.lua uses). Skipped without python3.
local support = require "support"
local retort = require "retort"
local plot = require "retort.plot"

local PYTHON = "/usr/bin/python3"

local function have_python()
   local f = io.open(PYTHON, "rb")
   if f then f:close() end
   return f ~= nil
end

-- Parses the SVG and prints, tab-separated:
--   title <text>
--   panel <key> <y of the lowest tick> <y of the highest tick>     (data values of the y range)
--   series <panel> <run> <column> <title text> <number of subpaths>
--   point <panel> <run> <column> <subpath> <x> <y>                   (data coordinates)
--   legend <panel> <text>
local CHECKER = [=[
import sys, re
import xml.etree.ElementTree as ET
NS = "{http://www.w3.org/2000/svg}"
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == NS + "svg", root.tag
def text_of(e):
    return "".join(e.itertext()).strip()
t = root.find(NS + "title")
print("title\t" + text_of(t))
for g in root.iter(NS + "g"):
    if g.get("class") != "panel":
        continue
    key = g.get("data-panel")
    def ticks(cls, coord):
        out = []
        for tg in g.findall(NS + "g"):
            if tg.get("class") != cls:
                continue
            line, label = tg.find(NS + "line"), tg.find(NS + "text")
            out.append((float(line.get(coord)), float(text_of(label))))
        out.sort(key=lambda p: p[1])
        assert len(out) >= 2, (key, cls, out)
        return out
    ys, xs = ticks("ytick", "y1"), ticks("xtick", "x1")
    def scale(tk):
        (p0, v0), (p1, v1) = tk[0], tk[-1]
        return lambda p: v0 + (p - p0) * (v1 - v0) / (p1 - p0)
    fx, fy = scale(xs), scale(ys)
    print("panel\t%s\t%.17g\t%.17g" % (key, ys[0][1], ys[-1][1]))
    for s in g.findall(NS + "g"):
        if s.get("class") != "series":
            continue
        run, col = s.get("data-run"), s.get("data-column")
        paths = s.findall(NS + "path")
        assert len(paths) == 1, (col, len(paths))
        d = paths[0].get("d")
        subs = re.findall(r"M[^M]*", d)
        print("series\t%s\t%s\t%s\t%s\t%d" % (key, run, col, text_of(s.find(NS + "title")), len(subs)))
        for i, sub in enumerate(subs):
            for x, y in re.findall(r"[ML]\s*([-\d.]+)\s+([-\d.]+)", sub):
                print("point\t%s\t%s\t%s\t%d\t%.17g\t%.17g" % (key, run, col, i + 1, fx(float(x)), fy(float(y))))
    for e in g.findall(NS + "g"):
        if e.get("class") == "legend-entry":
            print("legend\t%s\t%s" % (key, text_of(e)))
]=]

local checker_path
local function check_svg(path)
   checker_path = checker_path or support.tmpfile(CHECKER, ".py")
   local r = support.sh(PYTHON .. " " .. support.shquote(checker_path) .. " " .. support.shquote(path))
   assert.are.equal(0, r.status, "python could not parse the SVG: " .. r.stderr)
   local out = {panels = {}, series = {}, legend = {}}
   for line in r.stdout:gmatch("[^\n]+") do
      local f = {}
      for cell in (line .. "\t"):gmatch("([^\t]*)\t") do f[#f + 1] = cell end
      if f[1] == "title" then
         out.title = f[2]
      elseif f[1] == "panel" then
         out.panels[f[2]] = {lo = tonumber(f[3]), hi = tonumber(f[4])}
      elseif f[1] == "series" then
         local key = f[2] .. "|" .. f[3] .. "|" .. f[4]
         assert.is_nil(out.series[key], "two series for " .. key)
         out.series[key] = {panel = f[2], run = f[3], column = f[4], title = f[5], subpaths = tonumber(f[6]),
                            points = {}}
      elseif f[1] == "point" then
         local s = out.series[f[2] .. "|" .. f[3] .. "|" .. f[4]]
         s.points[#s.points + 1] = {sub = tonumber(f[5]), x = tonumber(f[6]), y = tonumber(f[7])}
      elseif f[1] == "legend" then
         out.legend[#out.legend + 1] = {panel = f[2], text = f[3]}
      end
   end
   return out
end

-- A CSV read independently of plot.lua: header names, and each row's cells as text.
local function read_csv(path)
   local lines = {}
   for l in support.slurp(path):gmatch("[^\n]+") do lines[#lines + 1] = l end
   local function split(l)
      local t = {}
      for c in (l .. ","):gmatch("([^,]*),") do t[#t + 1] = c end
      return t
   end
   local header, rows = split(lines[1]), {}
   for i = 2, #lines do
      local cells, row = split(lines[i]), {}
      for j, name in ipairs(header) do row[name] = cells[j] end
      rows[#rows + 1] = row
   end
   return header, rows
end

-- The finite (epoch, value) pairs of a column, as plot should draw them.
local function finite_points(rows, column)
   local pts = {}
   for _, row in ipairs(rows) do
      local v, e = tonumber(row[column]), tonumber(row.epoch)
      if v and e and v == v and math.abs(v) ~= math.huge then pts[#pts + 1] = {x = e, y = v} end
   end
   return pts
end

-- Every drawn point maps back to its CSV value through the axis scale (to 1e-4 of the axis
-- range: coordinates are written to 0.01 px on a 220 px axis); the minimum and maximum included.
local function assert_points_match(svg, series, expected)
   assert.are.equal(#expected, #series.points, series.column .. ": number of points")
   local range = svg.panels[series.panel].hi - svg.panels[series.panel].lo
   local lo, hi = 1, 1
   for i, p in ipairs(expected) do
      if p.y < expected[lo].y then lo = i end
      if p.y > expected[hi].y then hi = i end
      local got = series.points[i]
      assert.is_true(math.abs(got.x - p.x) < 1e-3, ("%s: x %g, expected %g"):format(series.column, got.x, p.x))
      assert.is_true(math.abs(got.y - p.y) <= 1e-4 * range,
         ("%s point %d: %.9g, expected %.9g"):format(series.column, i, got.y, p.y))
   end
   -- the extremes of the data are the extremes of the drawing (same points, same order)
   local glo, ghi = 1, 1
   for i, p in ipairs(series.points) do
      if p.y < series.points[glo].y then glo = i end
      if p.y > series.points[ghi].y then ghi = i end
   end
   assert.are.equal(expected[lo].y, expected[glo].y)
   assert.are.equal(expected[hi].y, expected[ghi].y)
end

local function find_series(svg, column, run)
   local found
   for _, s in pairs(svg.series) do
      if s.column == column and (run == nil or s.run == run) then
         assert.is_nil(found, "two series named " .. column)
         found = s
      end
   end
   return found
end

local function legend_has(svg, panel, text)
   for _, e in ipairs(svg.legend) do
      if e.panel == panel and e.text == text then return true end
   end
   return false
end

local devnull = io.open("/dev/null", "w")

-- A real (tiny) distillation run: train.fit writes metrics.csv with loss, accuracy, lr and the
-- Distiller's train_<term> columns.
local function tiny_run(dir, seed)
   retort.manualSeed(seed)
   local x, y = retort.randn(48, 4), (retort.rand(48) * 3):long() + 1
   local ds = retort.data.tensorDataset(x, y)
   local d = retort.distill.Distiller{teacher = retort.models.mlp{sizes = {4, 8, 3}},
                                      student = retort.models.mlp{sizes = {4, 6, 3}}, T = 2, alpha = 0.5, gamma = 0.5}
   local lr = retort.schedule.cosine{base = 0.2, epochs = 4}
   retort.train.fit{model = d, optimizer = retort.optim.SGD(d:parameters(), {lr = lr}),
                    train = retort.data.Loader(ds, {batchSize = 16, shuffle = true, seed = seed}),
                    test = retort.data.Loader(ds, {batchSize = 48}), epochs = 4, dir = dir, log = devnull}
   return dir .. "/metrics.csv"
end

describe("retort.plot", function()
   local dir
   before_each(function() dir = support.tmpdir() end)
   after_each(function() support.rmrf(dir) end)

   it("draws a train.fit run: a path per column in its panel, points mapping back to the CSV", function()
      if not have_python() then return pending("/usr/bin/python3 is missing: the SVG cannot be parsed") end
      local csv = tiny_run(dir, 5)
      local r = support.run({"plot", csv})
      assert.are.equal(0, r.status, r.stderr)
      local out = dir .. "/metrics.svg" -- the default: next to the CSV
      assert.matches("wrote " .. out:gsub("%p", "%%%0"), r.stdout)
      local svg = check_svg(out)
      assert.are.equal(dir, svg.title)
      local header, rows = read_csv(csv)
      assert.are.equal(4, #rows)
      local panel_of = {train_loss = "loss", test_loss = "loss", train_acc = "accuracy", test_acc = "accuracy",
                        test_top5 = "accuracy", lr = "lr", train_ce = "terms", train_kl = "terms", train_kd = "terms",
                        train_total = "terms"}
      local drawn = 0
      for _, column in ipairs(header) do
         local s = find_series(svg, column)
         if panel_of[column] then
            assert.is_not_nil(s, "no series for " .. column)
            assert.are.equal(panel_of[column], s.panel)
            assert.are.equal(column, s.title)
            assert.is_true(legend_has(svg, s.panel, column), "no legend entry for " .. column)
            assert.are.equal(1, s.subpaths)
            assert_points_match(svg, s, finite_points(rows, column))
            drawn = drawn + 1
         else
            assert.is_nil(s, column .. " should not be drawn") -- epoch, seconds, examples_per_s
         end
      end
      assert.are.equal(10, drawn)
   end)

   it("skips empty, non-numeric, NaN and infinite cells, breaking the line there, and escapes text", function()
      if not have_python() then return pending("/usr/bin/python3 is missing: the SVG cannot be parsed") end
      local odd = dir .. "/a&b <c> 'd\""
      assert.is_true(os.execute("mkdir -p " .. support.shquote(odd)))
      local csv = odd .. "/metrics.csv"
      local f = assert(io.open(csv, "w"))
      f:write("note,train_loss,epoch,test_acc,train_hint,seconds\n",
              "x,2.5,1,0.25,10,1\n", "y,nan,2,,20,1\n", "z,1.5,3,inf,-inf,1\n", "w,1.25,4,0.5,,1\n",
              "v,-nan,5,0.75,40,1\n", "u,0.5,6,1e999,50,1\n")
      f:close()
      local out = dir .. "/hand.svg"
      local path = plot.write({csv}, {out = out})
      assert.are.equal(out, path)
      local svg = check_svg(out)
      assert.are.equal(odd, svg.title)
      local _, rows = read_csv(csv)
      local loss = find_series(svg, "train_loss")
      assert.are.equal(3, loss.subpaths) -- 1 | 3, 4 | 6
      assert_points_match(svg, loss, finite_points(rows, "train_loss"))
      assert.are.same({1, 2, 2, 3}, {loss.points[1].sub, loss.points[2].sub, loss.points[3].sub, loss.points[4].sub})
      local acc = find_series(svg, "test_acc")
      assert.are.equal("accuracy", acc.panel)
      assert_points_match(svg, acc, finite_points(rows, "test_acc"))
      local hint = find_series(svg, "train_hint")
      assert.are.equal("terms", hint.panel)
      assert_points_match(svg, hint, finite_points(rows, "train_hint"))
      assert.are.same({1, 1, 2, 2}, {hint.points[1].sub, hint.points[2].sub, hint.points[3].sub, hint.points[4].sub})
      assert.is_nil(find_series(svg, "note"))
      assert.is_nil(find_series(svg, "seconds"))
   end)

   it("compares several runs on one plot: a series per run and column, each named in the legend", function()
      if not have_python() then return pending("/usr/bin/python3 is missing: the SVG cannot be parsed") end
      local a = tiny_run(dir .. "/a", 1)
      local b = tiny_run(dir .. "/b", 2)
      local r = support.run({"plot", a, dir .. "/b", "--title=a vs b"})  -- a run directory stands for its CSV
      assert.are.equal(0, r.status, r.stderr)
      local svg = check_svg(dir .. "/a/compare.svg")
      assert.are.equal("a vs b", svg.title)
      for _, run in ipairs({{dir .. "/a", a}, {dir .. "/b", b}}) do
         local _, rows = read_csv(run[2])
         for _, column in ipairs({"train_loss", "test_acc", "train_kd", "lr"}) do
            local s = find_series(svg, column, run[1])
            assert.is_not_nil(s, column .. " of " .. run[1])
            assert.are.equal(run[1] .. ": " .. column, s.title)
            assert.is_true(legend_has(svg, s.panel, run[1] .. ": " .. column))
            assert_points_match(svg, s, finite_points(rows, column))
         end
      end
   end)

   it("draws rows in memory (train.fit's history) and checks its options", function()
      local rows = {{epoch = 1, train_loss = 1, test_acc = 0.5}, {epoch = 2, train_loss = 0.5, test_acc = 0.75}}
      local svg, info = plot.svg({{label = "mine", rows = rows}})
      assert.are.same({panels = 2, series = 2}, info)
      assert.truthy(svg:find('data-column="train_loss"', 1, true))
      assert.truthy(svg:find("<title>mine</title>", 1, true))
      local ok, err = pcall(plot.svg, {{label = "x", rows = rows}}, {titel = "t"})
      assert.is_false(ok)
      assert.matches("plot.svg: unknown option 'titel' (known: out, title); did you mean 'title'?", err, 1, true)
      ok, err = pcall(plot.svg, {{label = "x", rows = {{epoch = 1, seconds = 3}}}})
      assert.is_false(ok)
      assert.matches("nothing to plot in x", err, 1, true)
      assert.are.equal("runs/x/metrics.svg", plot.defaultOut({"runs/x/metrics.csv"}))
      assert.are.equal("runs/x/compare.svg", plot.defaultOut({"runs/x/metrics.csv", "runs/y/metrics.csv"}))
   end)

   it("chooses nice ticks that enclose the data", function()
      for _, case in ipairs({{0.013, 0.87}, {-3, 7.5}, {1, 1}, {0, 0}, {2e-4, 1e-3}, {1234, 98765}}) do
         local lo, hi, step, ticks = plot.ticks(case[1], case[2], 5)
         assert.is_true(lo <= case[1] and hi >= case[2], ("%g..%g in %g..%g"):format(case[1], case[2], lo, hi))
         local mantissa = step / 10 ^ math.floor(math.log(step, 10) + 1e-9)
         assert.is_true(math.abs(mantissa - 1) < 1e-9 or math.abs(mantissa - 2) < 1e-9 or math.abs(mantissa - 5) < 1e-9,
            "step " .. step)
         assert.is_true(#ticks >= 2 and #ticks <= 12)
         assert.is_true(math.abs(ticks[1] - lo) < 1e-12)
         assert.is_true(math.abs(ticks[#ticks] - hi) < 1e-9 * math.max(1, math.abs(hi)))
      end
      local _, _, step = plot.ticks(1, 3, 3, true)
      assert.are.equal(1, step)
   end)
end)

describe("retort plot (command line)", function()
   it("reports a missing file with status 1", function()
      local r = support.run({"plot", "/nonexistent/metrics.csv"})
      assert.are.equal(1, r.status)
      assert.are.equal("retort plot: cannot read /nonexistent/metrics.csv: No such file or directory\n", r.stderr)
      assert.are.equal("", r.stdout)
   end)

   it("refuses a bad command line with status 2: no file, an unknown option (with a suggestion)", function()
      local r = support.run({"plot"})
      assert.are.equal(2, r.status)
      assert.matches("^retort plot: no metrics file given\nusage: retort plot", r.stderr)
      r = support.run({"plot", "--otu=x.svg", "a.csv"})
      assert.are.equal(2, r.status)
      assert.matches("retort plot: unknown option '--otu=x.svg' (did you mean --out?)", r.stderr, 1, true)
      r = support.run({"plot", "a.csv", "--out"})
      assert.are.equal(2, r.status)
      assert.matches("--out needs a value", r.stderr, 1, true)
   end)

   it("prints its usage with --help, status 0", function()
      local r = support.run({"plot", "--help"})
      assert.are.equal(0, r.status)
      assert.matches("^usage: retort plot", r.stdout)
   end)

   it("says when a file holds nothing to plot, status 1", function()
      local csv = support.tmpfile("epoch,seconds\n1,2\n", ".csv")
      local r = support.run({"plot", csv, "--out=" .. csv .. ".svg"})
      os.remove(csv)
      assert.are.equal(1, r.status)
      assert.matches("retort plot: nothing to plot in " .. csv, r.stderr, 1, true)
   end)
end)
