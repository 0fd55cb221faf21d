#!/usr/bin/env bash
# The CTest entry `install`: installs a build into a temporary prefix and uses it as a user would.
#
#   tests/install/check_install.sh BUILD_DIR
#
# 1. `cmake --install BUILD --prefix P`: the layout (DESIGN.md §8), the SONAME, every public header
#    and every file of lua/retort installed, and no build or source folder in any RUNPATH, in the
#    CMake package or in retort.pc.
# 2. The installed host with no environment variable: a script with arguments and a `-e` chunk;
#    its modules come from P (not the source tree) and it re-executed itself with GOMP_SPINCOUNT.
# 3. P moved elsewhere (the original removed), and every check below runs against the moved copy:
#    the host again, a plain lua5.4 with only LUA_PATH/LUA_CPATH set to the prefix's standard
#    folders, examples/c built through pkg-config (shared, and static with `pkg-config --static`),
#    examples/cmake configured through find_package (retort::retort, and retort::retort_static).
# Each program prints A @ B for A = [1..6] as 2x3 and B = [7..12] as 3x2; the reference is a plain
# loop in awk. Runs in a few seconds (two small CMake configures dominate); the LuaRocks build is
# not run here (it compiles everything again): README, "Install", gives its command.
set -u

build=$(cd "${1:?usage: check_install.sh BUILD_DIR}" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/retort-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; [ $# -lt 2 ] || printf '     %s\n' "$2" | head -20; }
# check NAME COMMAND...: passes when the command succeeds; its output is shown when it fails
check() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then ok "$name"; else fail "$name" "$out"; fi
}
# same NAME EXPECTED ACTUAL
same() {
  if [ "$2" = "$3" ]; then ok "$1"; else fail "$1" "expected: $(printf '%s' "$2" | tr '\n' '|')  got: $(printf '%s' "$3" | tr '\n' '|')"; fi
}

# A clean environment: nothing that points Lua or the loader somewhere, no OpenMP setting (the host
# must set GOMP_SPINCOUNT itself).
unset RETORT_LUA_PATH LUA_PATH LUA_PATH_5_4 LUA_CPATH LUA_CPATH_5_4 LUA_INIT LUA_INIT_5_4 \
      LD_LIBRARY_PATH OMP_WAIT_POLICY GOMP_SPINCOUNT PKG_CONFIG_PATH CMAKE_PREFIX_PATH
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")
abi=$(sed -n 's/^LUA_VERSION:INTERNAL=\([0-9]*\.[0-9]*\).*/\1/p' "$build/CMakeCache.txt")

# the reference: c[i][j] = sum_k A[i][k] B[k][j], A = 1..6 (2x3), B = 7..12 (3x2), row-major
expected=$(awk 'BEGIN { for (i = 0; i < 2; i++) for (j = 0; j < 2; j++) { s = 0
  for (k = 0; k < 3; k++) s += (i * 3 + k + 1) * (k * 2 + j + 7); printf "c[%d][%d] = %d\n", i, j, s } }')
products() { grep '^c\[' <<<"$1"; }

cat >"$tmp/snippet.lua" <<'EOF'
local retort = require "retort"
print("args " .. table.concat({...}, " "))
print("module " .. package.searchpath("retort", package.path))
print("spin " .. tostring(os.getenv("GOMP_SPINCOUNT")))
local c = retort.tensor{{1, 2, 3}, {4, 5, 6}}:matmul(retort.tensor{{7, 8}, {9, 10}, {11, 12}}):totable()
for i = 1, 2 do for j = 1, 2 do print(("c[%d][%d] = %g"):format(i - 1, j - 1, c[i][j])) end end
EOF
# a chunk given with -e: ones(2,3) @ ones(3,4) sums to 2 * 4 * 3 = 24
chunk='local r = require "retort"; print(r.ones(2, 3):matmul(r.ones(3, 4)):sum():item())'

# --- 1. install and layout ---------------------------------------------------------------------
prefix="$tmp/prefix"
if ! out=$(cmake --install "$build" --prefix "$prefix" 2>&1); then
  fail "cmake --install" "$out"
  echo "$passed passed, $failed failed"
  exit 1
fi
ok "cmake --install $build --prefix <tmp>"
missing=""
for f in bin/retort lib/libretort.so "lib/libretort.so.$version" lib/libretort.a \
         "lib/lua/$abi/retort/core.so" "share/lua/$abi/retort/init.lua" lib/pkgconfig/retort.pc \
         lib/cmake/retort/retortConfig.cmake lib/cmake/retort/retortConfigVersion.cmake; do
  [ -e "$prefix/$f" ] || missing="$missing $f"
done
same "layout: host, libraries, binding, modules, retort.pc, CMake package" "" "$missing"
same "libretort.so -> libretort.so.0 -> libretort.so.$version" "libretort.so.0 libretort.so.$version" \
  "$(readlink "$prefix/lib/libretort.so") $(readlink "$prefix/lib/libretort.so.0")"
same "SONAME libretort.so.0" "libretort.so.0" \
  "$(readelf -d "$prefix/lib/libretort.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')"
same "every public header installed" "$(cd "$src/core/include/retort" && ls -- *.h)" \
  "$(cd "$prefix/include/retort" && ls -- *.h)"
same "every file of lua/retort installed, folders kept" \
  "$(cd "$src/lua/retort" && find . -type f ! -name '.*' ! -name '*~' | sort)" \
  "$(cd "$prefix/share/lua/$abi/retort" && find . -type f | sort)"
runpaths=$(for f in bin/retort lib/libretort.so "lib/lua/$abi/retort/core.so"; do
  readelf -d "$prefix/$f" | sed -n 's/.*R\(UN\)\{0,1\}PATH.*\[\(.*\)\]/\2/p'; done)
same "no build or source folder in a RUNPATH" "" "$(grep -F -e "$build" -e "$src" <<<"$runpaths")"
same "no build or source folder in retort.pc or the CMake package" "" \
  "$(grep -rlF -e "$build" -e "$src" "$prefix/lib/pkgconfig" "$prefix/lib/cmake")"

# --- 2. the installed host ---------------------------------------------------------------------
host_checks() { # PREFIX WHERE
  local out
  out=$(cd "$tmp" && "$1/bin/retort" "$tmp/snippet.lua" x y 2>&1)
  same "host ($2): script runs, with its arguments" "args x y" "$(grep '^args' <<<"$out")"
  same "host ($2): modules from the prefix" "module $1/share/lua/$abi/retort/init.lua" \
    "$(grep '^module' <<<"$out")"
  same "host ($2): A @ B" "$expected" "$(products "$out")"
  same "host ($2): -e chunk" "24.0" "$(cd "$tmp" && "$1/bin/retort" -e "$chunk" 2>&1)"
}
host_checks "$prefix" "installed"
same "host: re-executed itself with GOMP_SPINCOUNT=1000" "spin 1000" \
  "$(cd "$tmp" && "$prefix/bin/retort" "$tmp/snippet.lua" | grep '^spin')"
same "host: -v" "retort $version" "$("$prefix/bin/retort" -v 2>&1 | cut -d' ' -f1-2)"

# --- 3. the prefix moved: everything below uses the moved copy -----------------------------------
moved="$tmp/elsewhere/retort"
mkdir -p "$tmp/elsewhere"
mv "$prefix" "$moved"
host_checks "$moved" "moved"

if command -v lua5.4 >/dev/null; then
  out=$(cd "$tmp" && LUA_PATH="$moved/share/lua/$abi/?.lua;$moved/share/lua/$abi/?/init.lua;;" \
        LUA_CPATH="$moved/lib/lua/$abi/?.so;;" OMP_WAIT_POLICY=PASSIVE lua5.4 "$tmp/snippet.lua" 2>&1)
  same "plain lua5.4: modules from the prefix" "module $moved/share/lua/$abi/retort/init.lua" \
    "$(grep '^module' <<<"$out")"
  same "plain lua5.4: A @ B" "$expected" "$(products "$out")"
  same "plain lua5.4: retort.core from the prefix" "$moved/lib/lua/$abi/retort/core.so" \
    "$(cd "$tmp" && LUA_CPATH="$moved/lib/lua/$abi/?.so;;" lua5.4 -e 'print(package.searchpath("retort.core", package.cpath))')"
else
  echo "skip plain lua5.4: lua5.4 is not installed (Debian package lua5.4)"
fi

export PKG_CONFIG_PATH="$moved/lib/pkgconfig"
same "pkg-config --modversion retort" "$version" "$(pkg-config --modversion retort 2>&1)"
cflags=$(pkg-config --cflags retort)
libdir=$(pkg-config --variable=libdir retort)
if check "examples/c through pkg-config (libretort.so)" \
     cc "$src/examples/c/main.c" $cflags $(pkg-config --libs retort) -Wl,-rpath,"$libdir" -o "$tmp/c-shared"; then
  out=$("$tmp/c-shared" 2>&1)
  same "examples/c (shared): A @ B" "$expected" "$(products "$out")"
  check "examples/c (shared): a bad product is refused with a status and a message" grep -q '^refused: ' <<<"$out"
  found=$(ldd "$tmp/c-shared" | sed -n 's/.*libretort\.so\.0 => \(.*\)\/libretort\.so\.0 (.*/\1/p')
  same "examples/c (shared): libretort.so.0 from the moved prefix" "$(cd "$moved/lib" && pwd -P)" \
    "$(cd "${found:-/nonexistent}" 2>/dev/null && pwd -P)"
fi
static_libs=$(pkg-config --static --libs retort)
if check "examples/c through pkg-config --static (libretort.a)" \
     cc "$src/examples/c/main.c" $cflags ${static_libs/-lretort /-l:libretort.a } -o "$tmp/c-static"; then
  same "examples/c (static): A @ B" "$expected" "$(products "$("$tmp/c-static" 2>&1)")"
  same "examples/c (static): no libretort.so needed" "" "$(ldd "$tmp/c-static" | grep libretort)"
fi
unset PKG_CONFIG_PATH

for kind in shared static; do
  flag=OFF; [ $kind = static ] && flag=ON
  dir="$tmp/cmake-$kind"
  if check "examples/cmake ($kind): configured through find_package" \
       cmake -S "$src/examples/cmake" -B "$dir" -DCMAKE_PREFIX_PATH="$moved" -DAPP_STATIC=$flag; then
    if check "examples/cmake ($kind): built" cmake --build "$dir"; then
      same "examples/cmake ($kind): A @ B" "$expected" "$(products "$("$dir/app" 2>&1)")"
      linked=$(ldd "$dir/app" | grep -c 'libretort\.so')
      same "examples/cmake ($kind): linked to libretort.$([ $kind = static ] && echo a || echo so)" \
        "$([ $kind = static ] && echo 0 || echo 1)" "$linked"
    fi
  fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
