#!/usr/bin/env bash
# make bench: every benchmark, results written to bench/results/ with command, commit, date and
# machine. Run on a quiet machine: the numbers are only comparable within one run.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/results
mkdir -p "$out"

commit=$(git rev-parse --short HEAD)
[ -n "$(git status --porcelain --untracked-files=no -- . ':!bench/results')" ] && commit="$commit (with uncommitted changes)"
{
  echo "# Google Benchmark: parse + pick (100 endpoints) and the whole ext_proc stream"
  echo
  echo "- command: \`build/bin/parse_pick_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true\`"
  echo "- commit: $commit"
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
  echo
  echo '```'
  build/bin/parse_pick_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true 2>&1
  echo '```'
} > "$out/parse_pick.md"
echo "wrote $out/parse_pick.md"

{
  echo "# Google Benchmark: metrics page parsing (vLLM V1 page, ~16 KB)"
  echo
  echo "- command: \`build/bin/metrics_parse_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true\`"
  echo "- commit: $commit"
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
  echo
  echo '```'
  build/bin/metrics_parse_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true 2>&1
  echo '```'
} > "$out/metrics_parse.md"
echo "wrote $out/metrics_parse.md"

{
  echo "# Google Benchmark: one scheduling cycle (default profile) and the prefix index"
  echo
  echo "- command: \`build/bin/scheduling_bench --benchmark_min_time=1\`"
  echo "- commit: $commit"
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
  echo "- targets (issue 5): 100 endpoints and an 8K-token prompt p50 <= 20 us, p99 <= 100 us; <= 64 bytes of index memory per cached block"
  echo
  echo '```'
  build/bin/scheduling_bench --benchmark_min_time=1 2>&1
  echo '```'
} > "$out/scheduling.md"
echo "wrote $out/scheduling.md"

.venv/bin/python bench/scrape_cpu.py --seconds "${BENCH_SECONDS:-10}"
.venv/bin/python bench/added_latency.py --seconds "${BENCH_SECONDS:-10}"
.venv/bin/python bench/added_latency.py --seconds "${BENCH_SECONDS:-10}" \
  --epp-arg=--process-responses=false --out "$out/added_latency_no_response_processing.md"
.venv/bin/python bench/modelsim_cost.py --seconds "${BENCH_SECONDS:-10}"
bash bench/clustersim_sweep.sh
# Real-time scenarios with the PyPI peers (installed into .venv from bench/requirements.txt by
# the scripts): about 15, 10, 22, 8 and 7 minutes.
.venv/bin/python bench/scenarios/prefix_heavy.py
.venv/bin/python bench/scenarios/multi_lora.py
.venv/bin/python bench/scenarios/no_sharing.py
.venv/bin/python bench/scenarios/streaming_cost.py
.venv/bin/python bench/scenarios/router_overhead.py
