#!/usr/bin/env bash
# The bounded fuzz step of scripts/test.sh: builds the libFuzzer targets with clang (build-fuzz,
# RETORT_FUZZ=ON: ASan + UBSan + coverage), makes the seed corpora, and runs every target for a
# fixed number of mutations from a fixed seed: the C readers' targets see the same inputs every run;
# the Lua ones nearly (Lua seeds its string hashes from addresses, so table order, and with it the
# coverage the fuzzer steers by, varies a little from run to run). A failure's input is kept.
# Prints per target the executions, libFuzzer's coverage at the end (cov: edges of all of retort's
# instrumented code the target reached, ft: features), the edges reached in the reader's own
# source files (covered/total, over the final corpus) and the time; exits 1 when any target
# crashed, failed a check, leaked, hung (-timeout) or allocated beyond the limits, after running
# all of them.
#
#   tests/fuzz/run_bounded.sh                      # all targets
#   tests/fuzz/run_bounded.sh image npy            # some of them
#   FUZZ_RUNS_SCALE=10 tests/fuzz/run_bounded.sh   # ten times the runs below
#
# Environment: FUZZ_BUILD (build-fuzz), FUZZ_SEED (1), FUZZ_RUNS_SCALE (1). A crash's input is
# kept in $FUZZ_BUILD/fuzz-crashes/<target>/ (reproduce: $FUZZ_BUILD/fuzz/fuzz_<target> FILE) and
# its log in $FUZZ_BUILD/fuzz-logs/<target>.log. Longer runs: tests/fuzz/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
build=${FUZZ_BUILD:-build-fuzz}
seed=${FUZZ_SEED:-1}
scale=${FUZZ_RUNS_SCALE:-1}

# Runs per target: a few thousand mutations each, tuned so that the whole step takes about two
# minutes on 2 cores. The C readers run at thousands of inputs a second, the HDF5 ones (libhdf5
# and the Lua layers above it) at one to two hundred.
declare -A runs=([idx]=50000 [npy]=50000 [cifar]=8000 [image]=20000 [checkpoint]=3000 [cache]=3000
                 [hdf5_dataset]=3000)
all=(idx npy cifar image checkpoint cache hdf5_dataset)
# the reader's own sources, whose edges are counted at the end (libFuzzer's -print_coverage)
h5='core/src/h5[.]c|lua/bind/bind_h5[.]c'
declare -A sources=([idx]='core/src/idx[.]c' [npy]='core/src/npy[.]c' [cifar]='core/src/cifar[.]c'
                    [image]='core/src/image(_batch|_resize)?[.]c' [checkpoint]=$h5 [cache]=$h5 [hdf5_dataset]=$h5)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
for t in "${targets[@]}"; do
  [ -n "${runs[$t]:-}" ] || { echo "run_bounded.sh: unknown target '$t' (targets: ${all[*]})" >&2; exit 2; }
done

if ! command -v clang >/dev/null; then
  echo "run_bounded.sh: clang is missing (scripts/setup.sh --test installs clang and libclang-rt-14-dev)" >&2
  exit 1
fi
echo "== fuzz: building $build (clang, RETORT_FUZZ=ON) =="
CC=clang cmake -S . -B "$build" -DRETORT_FUZZ=ON -DRETORT_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g" >/dev/null
cmake --build "$build" -j"$(nproc)" --target retort_fuzz retort >/dev/null
echo "== fuzz: seed corpora =="
tests/fuzz/make_corpus.sh "$build/fuzz-corpus" "$build/bin/retort"

# One OpenMP thread (the readers' loops gain nothing from more here, and the 2 cores run the
# fuzzer). ASan: a huge malloc returns NULL as glibc's does (the readers must handle it) instead of
# aborting; leaks are looked for after every input whose mallocs and frees differ (libFuzzer) and
# at exit, with the slow unwinder, so that the suppressions of libhdf5's own leaks
# (tests/fuzz/lsan.supp) can name its functions; 10 frames keep it fast.
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1:fast_unwind_on_malloc=0:malloc_context_size=10
export LSAN_OPTIONS=suppressions=$root/tests/fuzz/lsan.supp
export UBSAN_OPTIONS=print_stacktrace=1
mkdir -p "$build/fuzz-logs"
failed=()
summary=()
start=$SECONDS
for t in "${targets[@]}"; do
  n=$((runs[$t] * scale))
  seeds=$(find "$build/fuzz-corpus/$t" -type f | wc -l)
  work="$build/fuzz-work/$t"   # the inputs that found new coverage (fresh each run)
  art="$build/fuzz-crashes/$t"
  log="$build/fuzz-logs/$t.log"
  rm -rf "$work" "$art"
  mkdir -p "$work" "$art"
  t0=$SECONDS
  # first every seed once, each of which must be read (not refused): the corpus is valid, and
  # retort reads what numpy, PIL, h5py and retort itself write
  # (no seeds, when make_corpus.py's Python packages are missing: the fuzzer starts from nothing)
  mapfile -t seed_files < <(find "$build/fuzz-corpus/$t" -type f | sort)
  if [ "$seeds" -gt 0 ] && ! FUZZ_SEEDS_VALID=1 "$build/fuzz/fuzz_$t" -rss_limit_mb=2048 -artifact_prefix="$art/" \
       "${seed_files[@]}" >"$log" 2>&1; then
    failed+=("$t")
    line=$(printf '%-13s FAILED: a seed was refused or crashed (log %s)' "$t" "$log")
    grep -a -E 'fuzz check failed|==ERROR|SUMMARY' "$log" | head -5 || true
    echo "$line"
    summary+=("$line")
    continue
  fi
  # -timeout: one input may take 10 s; -rss_limit_mb / -malloc_limit_mb: no input may make the
  # process hold 2 GB or ask for 512 MB at once (the seeds are KBs); -max_total_time: a slow
  # machine still ends
  rc=0
  "$build/fuzz/fuzz_$t" -runs="$n" -seed="$seed" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 \
    -max_total_time=300 -print_final_stats=1 -artifact_prefix="$art/" "$work" "$build/fuzz-corpus/$t" \
    >"$log" 2>&1 || rc=$?
  secs=$((SECONDS - t0))
  done_line=$(grep -a -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
  execs=$(grep -a -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$done_line")
  ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$done_line")
  corp=$(sed -n 's/.*corp: \([0-9]*\).*/\1/p' <<<"$done_line")
  if [ "$rc" -eq 0 ] && [ -n "$done_line" ]; then
    # the edges of the reader's own files that the final corpus reaches (one more pass over it)
    reader=$(ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 "$build/fuzz/fuzz_$t" -runs=0 -print_coverage=1 \
               -rss_limit_mb=2048 "$work" "$build/fuzz-corpus/$t" 2>&1 \
             | awk -v pat="${sources[$t]}" '
                 /^(UN)?COVERED_FUNC:/ && $7 ~ pat { split($5, e, "/"); c += e[1]; n += e[2] }
                 END { if (n) printf "%d/%d (%d%%)", c, n, 100 * c / n; else printf "?" }')
    line=$(printf '%-13s %7s runs  cov %5s  ft %5s  corpus %4s (from %2d seeds)  reader edges %-16s %4ds  ok' "$t" \
             "$execs" "$cov" "$ft" "$corp" "$seeds" "$reader" "$secs")
  else
    failed+=("$t")
    crash=$(find "$art" -type f -printf '%f\n' 2>/dev/null | head -1)
    line=$(printf '%-13s %7s runs  FAILED (exit %d): %s  (log %s)' "$t" "$execs" "$rc" \
             "${crash:+$art/$crash}" "$log")
    echo "--- fuzz_$t failed; the report:"
    grep -a -E '==ERROR|ERROR: libFuzzer|fuzz check failed|runtime error|SUMMARY|^    #[0-9]+ ' "$log" \
      | grep -av 'liblua5.4\|fuzzer::' | head -30 || true
  fi
  echo "$line"
  summary+=("$line")
done
echo "== fuzz: $((SECONDS - start)) s for ${#targets[@]} targets (seed $seed) =="
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs in $build/fuzz-crashes/, logs in $build/fuzz-logs/)" >&2
  exit 1
fi
