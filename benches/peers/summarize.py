#!/usr/bin/env python3
"""Reads the raw outputs of benches/peers.sh (RESULTS/<rep>/<target>/...), prints the table of
medians (with the min-max spread over repetitions) and ratios chaosgate / peer, and writes the
same as JSON."""

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

PROXIES = ["chaosgate", "nginx", "haproxy"]
TARGETS = ["direct"] + PROXIES
LOAD_GENERATORS = ["chaosgate", "wrk", "oha"]


def wrk(path):
    """rps, p50/p99 (ms), requests and errors from `wrk --latency` text."""
    text = path.read_text()
    unit = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}
    out = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))}
    out["requests"] = int(re.search(r"(\d+) requests in", text).group(1))
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
        if m:
            out[f"p{pct}_ms"] = float(m.group(1)) * unit[m.group(2)]
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors += int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    errors += sum(int(g) for g in m.groups()) if m else 0
    out["errors"] = errors
    return out


def chaosgate_load(path, duration):
    s = json.loads(path.read_text())
    ok = sum(n for code, n in s["status_counts"].items() if 200 <= int(code) < 300)
    return {
        "rps": s["responses"] / duration,
        "ok_rps": ok / duration,
        "p50_ms": s["latency"]["p50_ms"],
        "p99_ms": s["latency"]["p99_ms"],
        "errors": s["sent"] - ok,
    }


def oha(path, duration):
    if not path.exists() or path.stat().st_size == 0:
        return None
    s = json.loads(path.read_text())
    codes = s.get("statusCodeDistribution", {})
    ok = sum(n for code, n in codes.items() if 200 <= int(code) < 300)
    pct = s.get("latencyPercentiles", {})
    return {
        "rps": sum(codes.values()) / duration,
        "ok_rps": ok / duration,
        "p50_ms": pct["p50"] * 1e3 if pct.get("p50") is not None else None,
        "p99_ms": pct["p99"] * 1e3 if pct.get("p99") is not None else None,
        "errors": sum(s.get("errorDistribution", {}).values()),
    }


def strace_counts(path):
    """{syscall: calls} from an `strace -c` table."""
    counts = {}
    for line in path.read_text().splitlines():
        fields = line.split()
        # % time, seconds, usecs/call, calls, [errors,] syscall
        if len(fields) in (5, 6) and fields[3].isdigit() and fields[-1] != "total":
            counts[fields[-1]] = int(fields[3])
    return counts


def syscalls(directory):
    """Per proxy: system calls per request, in all and by name (the most frequent first)."""
    out = {}
    for t in PROXIES:
        d = directory / t if directory else None
        if not d or not (d / "strace.txt").exists() or not (d / "wrk.txt").exists():
            continue
        requests = wrk(d / "wrk.txt")["requests"]
        counts = strace_counts(d / "strace.txt")
        if not requests or not counts:
            continue
        by_name = sorted(((n / requests, name) for name, n in counts.items()), reverse=True)
        out[t] = {"per_request": sum(counts.values()) / requests,
                  "by_name": {name: per for per, name in by_name}}
    return out


def stat(values):
    """Median and spread of the repetitions' values (None when there is nothing)."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "values": values}


def ratio(a, b):
    if a is None or b is None or not b["median"]:
        return None
    return a["median"] / b["median"]


def paired_ratio(a, b):
    """The per-repetition ratios a / b, when both were measured in every repetition."""
    if not a or not b or len(a["values"]) != len(b["values"]):
        return None
    return stat([x / y for x, y in zip(a["values"], b["values"]) if y])


def collect(results, duration):
    reps = sorted(p for p in results.iterdir() if p.is_dir())
    raw = {"proxy": {}, "open": {}, "loadgen": {}}
    per = lambda: {t: [] for t in TARGETS}
    wrk_runs, open_cg, open_oha, rss, cpu = per(), per(), per(), per(), per()
    lg = {"wrk": [], "chaosgate": [], "oha": [], "open_chaosgate": [], "open_oha": []}
    lg_cpu = {g: [] for g in LOAD_GENERATORS}
    for rep in reps:
        for t in TARGETS:
            d = rep / t
            wrk_runs[t].append(wrk(d / "wrk.txt"))
            open_cg[t].append(chaosgate_load(d / "open-chaosgate.json", duration))
            open_oha[t].append(oha(d / "open-oha.json", duration))
            if (d / "rss.txt").exists():
                rss[t].append(int((d / "rss.txt").read_text()) / 1024)
            if (d / "cpu.txt").exists():
                before, after = map(float, (d / "cpu.txt").read_text().split())
                cpu[t].append((after - before) / wrk_runs[t][-1]["requests"] * 1e6)
        d = rep / "loadgen"
        lg["wrk"].append(wrk(d / "wrk.txt"))
        lg["chaosgate"].append(chaosgate_load(d / "closed-chaosgate.json", duration))
        lg["oha"].append(oha(d / "closed-oha.json", duration))
        lg["open_chaosgate"].append(chaosgate_load(d / "open-chaosgate.json", duration))
        lg["open_oha"].append(oha(d / "open-oha.json", duration))
        for g in LOAD_GENERATORS:
            lg_cpu[g].append(generator_cpu(d / f"cpu-{g}.txt", lg[g][-1], duration))
    return len(reps), wrk_runs, open_cg, open_oha, rss, cpu, lg, lg_cpu


def generator_cpu(path, run, duration):
    """A closed-loop generator's own CPU µs per response, and how busy the backend's core was
    meanwhile (1.0: saturated, so the rps compares the backend under each generator's load)."""
    if run is None or not path.exists():
        return None
    generator_s, backend_before, backend_after = map(float, path.read_text().split())
    responses = run["requests"] if "requests" in run else run["rps"] * duration
    if not responses:
        return None
    return {"cpu_us_per_request": generator_s / responses * 1e6,
            "backend_busy": (backend_after - backend_before) / duration}


def pick(runs, key):
    return [r[key] if r and r.get(key) is not None else None for r in runs]


def summarize(args):
    n, wrk_runs, open_cg, open_oha, rss, cpu, lg, lg_cpu = collect(Path(args.results),
                                                                  args.duration)
    proxy = {}
    for t in TARGETS:
        proxy[t] = {
            "rps": stat(pick(wrk_runs[t], "rps")),
            "p50_ms": stat(pick(wrk_runs[t], "p50_ms")),
            "p99_ms": stat(pick(wrk_runs[t], "p99_ms")),
            "errors": sum(pick(wrk_runs[t], "errors")),
            "cpu_us_per_request": stat(cpu[t]),
            "peak_rss_mb": stat(rss[t]),
        }
    added = {}
    for tool, runs in (("chaosgate_load", open_cg), ("oha", open_oha)):
        added[tool] = {}
        for t in PROXIES:
            entry = {}
            for key in ("p50_ms", "p99_ms"):
                diffs = [
                    (p[key] - d[key]) if p and d and p[key] is not None and d[key] is not None
                    else None
                    for p, d in zip(runs[t], runs["direct"])
                ]
                entry["added_" + key] = stat(diffs)
                entry[key] = stat(pick(runs[t], key))
            entry["errors"] = sum(e for e in pick(runs[t], "errors") if e)
            added[tool][t] = entry
        added[tool]["direct"] = {
            "p50_ms": stat(pick(runs["direct"], "p50_ms")),
            "p99_ms": stat(pick(runs["direct"], "p99_ms")),
        }
    loadgen = {
        "closed_rps": {
            "wrk": stat(pick(lg["wrk"], "rps")),
            "chaosgate": stat(pick(lg["chaosgate"], "rps")),
            "oha": stat(pick(lg["oha"], "rps")),
        },
        "cpu_us_per_request": {g: stat(pick(lg_cpu[g], "cpu_us_per_request"))
                               for g in LOAD_GENERATORS},
        "backend_busy": {g: stat(pick(lg_cpu[g], "backend_busy")) for g in LOAD_GENERATORS},
        "open_accuracy": {
            "chaosgate": stat([r["ok_rps"] / args.accuracy_rate for r in lg["open_chaosgate"]]),
            "oha": stat([r["ok_rps"] / args.accuracy_rate if r else None
                         for r in lg["open_oha"]]),
        },
    }
    calls = syscalls(Path(args.syscalls) if args.syscalls else None)
    cg = proxy["chaosgate"]
    # Ratios within each repetition (peers measured minutes apart share the machine's state
    # more closely than medians taken over all repetitions do).
    paired = {}
    for key, label in (("rps", "proxy_rps"), ("p99_ms", "proxy_p99"),
                       ("cpu_us_per_request", "cpu_per_request")):
        for peer in ("nginx", "haproxy"):
            a, b = cg[key], proxy[peer][key]
            paired[f"{label}_vs_{peer}"] = paired_ratio(a, b)
    for key, label in (("closed_rps", "loadgen_rps"), ("cpu_us_per_request",
                                                       "loadgen_cpu_per_request")):
        for peer in ("wrk", "oha"):
            paired[f"{label}_vs_{peer}"] = paired_ratio(loadgen[key]["chaosgate"],
                                                        loadgen[key][peer])
    ratios = {
        "proxy_rps_vs_nginx": ratio(cg["rps"], proxy["nginx"]["rps"]),
        "proxy_rps_vs_haproxy": ratio(cg["rps"], proxy["haproxy"]["rps"]),
        "proxy_p99_vs_nginx": ratio(cg["p99_ms"], proxy["nginx"]["p99_ms"]),
        "proxy_p99_vs_haproxy": ratio(cg["p99_ms"], proxy["haproxy"]["p99_ms"]),
        "cpu_per_request_vs_nginx": ratio(cg["cpu_us_per_request"],
                                          proxy["nginx"]["cpu_us_per_request"]),
        "cpu_per_request_vs_haproxy": ratio(cg["cpu_us_per_request"],
                                            proxy["haproxy"]["cpu_us_per_request"]),
        "peak_rss_vs_nginx": ratio(cg["peak_rss_mb"], proxy["nginx"]["peak_rss_mb"]),
        "peak_rss_vs_haproxy": ratio(cg["peak_rss_mb"], proxy["haproxy"]["peak_rss_mb"]),
        "loadgen_rps_vs_wrk": ratio(loadgen["closed_rps"]["chaosgate"],
                                    loadgen["closed_rps"]["wrk"]),
        "loadgen_rps_vs_oha": ratio(loadgen["closed_rps"]["chaosgate"],
                                    loadgen["closed_rps"]["oha"]),
        "loadgen_cpu_per_request_vs_wrk": ratio(loadgen["cpu_us_per_request"]["chaosgate"],
                                                loadgen["cpu_us_per_request"]["wrk"]),
        "loadgen_cpu_per_request_vs_oha": ratio(loadgen["cpu_us_per_request"]["chaosgate"],
                                                loadgen["cpu_us_per_request"]["oha"]),
    }
    for peer in ("nginx", "haproxy"):
        if "chaosgate" in calls and peer in calls:
            ratios[f"syscalls_per_request_vs_{peer}"] = (calls["chaosgate"]["per_request"]
                                                         / calls[peer]["per_request"])
    for tool in ("chaosgate_load", "oha"):
        a = added[tool]
        for peer in ("nginx", "haproxy"):
            ratios[f"added_p99_vs_{peer}_by_{tool}"] = ratio(a["chaosgate"]["added_p99_ms"],
                                                             a[peer]["added_p99_ms"])
    return {
        "repetitions": n,
        "settings": {"duration_s": args.duration, "connections": args.connections,
                     "latency_rate": args.latency_rate, "accuracy_rate": args.accuracy_rate,
                     "pinning": "proxy: core 0, 1 worker; load generator + backend: core 1",
                     "load_average_before": args.load_before,
                     "load_average_after": args.load_after},
        "versions": dict(v.split("=", 1) for v in args.versions),
        "proxy_throughput": proxy,
        "added_latency": added,
        "load_generator": loadgen,
        "syscalls_under_wrk": calls,
        "ratios_chaosgate_over_peer": ratios,
        "paired_ratios_chaosgate_over_peer": paired,
    }


def cell(s, fmt="{:.0f}"):
    if s is None:
        return "-"
    if s["min"] == s["max"]:
        return fmt.format(s["median"])
    return f"{fmt.format(s['median'])} [{fmt.format(s['min'])}–{fmt.format(s['max'])}]"


def r(x):
    return "-" if x is None else f"{x:.2f}×"


def print_table(s):
    p, a, lg, q = (s["proxy_throughput"], s["added_latency"], s["load_generator"],
                   s["ratios_chaosgate_over_peer"])
    st = s["settings"]
    w = sys.stdout.write
    w(f"\nmedian [min–max] of {s['repetitions']} repetitions, {st['duration_s']} s each, "
      f"{st['connections']} connections; {st['pinning']}\n")
    w(f"versions: {', '.join(f'{k} {v}' for k, v in s['versions'].items())}; load average "
      f"{st['load_average_before']} before, {st['load_average_after']} after\n\n")
    w("(a) proxy throughput, wrk keep-alive, small responses\n")
    w(f"{'target':<10} {'rps':>22} {'p50 ms':>20} {'p99 ms':>20} {'CPU µs/req':>18} "
      f"{'peak RSS MB':>16} {'errors':>6}\n")
    for t in TARGETS:
        e = p[t]
        w(f"{t:<10} {cell(e['rps']):>22} {cell(e['p50_ms'], '{:.2f}'):>20} "
          f"{cell(e['p99_ms'], '{:.2f}'):>20} {cell(e['cpu_us_per_request'], '{:.1f}'):>18} "
          f"{cell(e['peak_rss_mb'], '{:.1f}'):>16} {e['errors']:>6}\n")
    w(f"\n(b) added latency at {st['latency_rate']} req/s open loop (proxy minus direct, ms)\n")
    w(f"{'generator':<15} {'target':<10} {'p50':>20} {'p99':>20} {'added p50':>22} "
      f"{'added p99':>22}\n")
    for tool in ("chaosgate_load", "oha"):
        w(f"{tool:<15} {'direct':<10} {cell(a[tool]['direct']['p50_ms'], '{:.3f}'):>20} "
          f"{cell(a[tool]['direct']['p99_ms'], '{:.3f}'):>20}\n")
        for t in PROXIES:
            e = a[tool][t]
            w(f"{'':<15} {t:<10} {cell(e['p50_ms'], '{:.3f}'):>20} "
              f"{cell(e['p99_ms'], '{:.3f}'):>20} {cell(e['added_p50_ms'], '{:.3f}'):>22} "
              f"{cell(e['added_p99_ms'], '{:.3f}'):>22}\n")
    w("\n(c) load generators against the backend alone (generator on core 1, backend on core 0)\n")
    w(f"{'closed loop':<19} {'generator':<10} {'rps':>24} {'its CPU µs/req':>20} "
      f"{'backend core busy':>20}\n")
    for g in LOAD_GENERATORS:
        w(f"{'':<19} {g:<10} {cell(lg['closed_rps'][g]):>24} "
          f"{cell(lg['cpu_us_per_request'][g], '{:.2f}'):>20} "
          f"{cell(lg['backend_busy'][g], '{:.2f}'):>20}\n")
    for g in ("chaosgate", "oha"):
        w(f"open-loop accuracy  {g:<10} {cell(lg['open_accuracy'][g], '{:.3f}'):>24}"
          f"   (achieved 2xx/s ÷ {st['accuracy_rate']} asked)\n")
    if s["syscalls_under_wrk"]:
        w("\n(e) system calls per request under wrk (strace -c, one run; counts, not times)\n")
        for t, e in s["syscalls_under_wrk"].items():
            top = ", ".join(f"{name} {per:.3f}" for name, per in list(e["by_name"].items())[:5])
            w(f"{t:<10} {e['per_request']:>6.2f}   {top}\n")
    w("\nratios chaosgate ÷ peer: of the medians, and [per-repetition ratios: median, min–max]\n")
    paired = s["paired_ratios_chaosgate_over_peer"]
    for k, v in q.items():
        extra = f"   [{cell(paired[k], '{:.2f}')}]" if paired.get(k) else ""
        w(f"  {k:<40} {r(v)}{extra}\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("out")
    ap.add_argument("--duration", type=float, required=True)
    ap.add_argument("--connections", type=int, required=True)
    ap.add_argument("--latency-rate", type=float, required=True)
    ap.add_argument("--accuracy-rate", type=float, required=True)
    ap.add_argument("--load-before", type=float)
    ap.add_argument("--load-after", type=float)
    ap.add_argument("--versions", nargs="*", default=[])
    ap.add_argument("--syscalls", help="the folder of strace counts (one per proxy)")
    args = ap.parse_args()
    summary = summarize(args)
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    print_table(summary)


if __name__ == "__main__":
    main()
