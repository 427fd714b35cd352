#!/usr/bin/env python3
"""Measures cxr side by side with onnxruntime and libtorch in one run and writes BENCHMARKS.md.

Run through scripts/benchmark.sh, which installs and builds everything this needs. Every
comparison is interleaved (A B C … A B C …, `--rounds` times) so that a machine whose speed
drifts, or that other work shares, slows every contender alike; each figure is the median over
rounds of each round's median.
"""

import argparse
import csv
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
ORT = [PY, str(ROOT / "scripts/bench_onnxruntime.py")]
ZOO = ("seed-cnn", "mobilenet-v2", "efficientnet-lite0", "resnet18")  # what the libtorch example builds
ARM_SECTION = "## ARM: int8 against fp32 by instruction count (a proxy)"


def run_json(cmd, env=None):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT, env={**os.environ, **(env or {})}).stdout
    return json.loads(out)


def sh(cmd):
    return subprocess.run(cmd, capture_output=True, text=True, shell=True, cwd=ROOT).stdout.strip()


def median(values):
    return statistics.median(values) if values else None


# ------------------------------------------------------------------ what is measured

def models(extra_dir):
    """Shipped cards, then cards in `extra_dir` for architectures nothing shipped has."""
    found = [(p, json.loads(p.read_text())) for p in sorted((ROOT / "models").glob("*.card.json"))]
    shipped_archs = {c["architecture"] for _, c in found}
    for p in sorted(Path(extra_dir).glob("*.card.json")):
        card = json.loads(p.read_text())
        if card["architecture"] not in shipped_archs:
            found.append((p, card))
    return found


def onnx_of(card_path, card):
    return card_path.parent / card["file"]


def test_auc(card):
    for e in card.get("evaluations", []):
        if e["name"] == "test":
            return e["auc"]
    return None


def latency_jobs(model_list, image, runs, tch):
    """One (key, command, environment, how to read it) per contender × model × batch."""
    jobs = []
    for card_path, card in model_list:
        onnx = str(onnx_of(card_path, card))
        for batch in (1, 8):
            n = runs if batch == 1 else max(runs // 4, 5)
            key = (card["name"], card["precision"], batch)
            bench = [str(ROOT / "target/release/cxr"), "bench", "--json", "-m", str(card_path), "--runs", str(n), "--batch", str(batch), "--jobs", "1", "--image", image]
            p50 = lambda j: j[0]["latency_p50_ms"]
            jobs.append((key + ("tract",), bench, None, p50))
            jobs.append((key + ("tract-as-written",), bench, {"CXR_GRAPH_FORM": "onnx"}, p50))
            jobs.append((key + ("tract-all",), bench + ["--threads-per-image", "0"], None, p50))
            for threads, label in ((1, "ort-1t"), (0, "ort-all")):
                jobs.append((key + (label,), ORT + ["latency", onnx, "--image", image, "--batch", str(batch), "--threads", str(threads), "--runs", str(n)], None, lambda j: j["median_ms"]))
            if card["architecture"] in ZOO and card["precision"] == "fp32" and tch:
                shape = ["--size", str(card["preprocess"]["size"]), "--class-set", card.get("class_set", "binary")]
                for threads, label in ((1, "tch-1t"), (0, "tch-all")):
                    jobs.append((key + (label,), [tch, "--arch", card["architecture"], "--batch", str(batch), "--threads", str(threads), "--runs", str(n), "--image", image] + shape, None, lambda j: j["median_ms"]))
    return jobs


def load_times(model_list, image, rounds):
    """cxr bench's load time (read, sha256, parse, optimise) per model, median over rounds."""
    times = {}
    for _ in range(rounds):
        for card_path, card in model_list:
            j = run_json([str(ROOT / "target/release/cxr"), "bench", "--json", "-m", str(card_path), "--runs", "1", "--jobs", "1", "--image", image])
            times.setdefault(card["name"], []).append(j[0]["load_ms"])
    return {k: median(v) for k, v in times.items()}


def interleaved(jobs, rounds):
    results = {}
    for r in range(rounds):
        # Rotate the order each round so no contender always runs first (or after the heaviest).
        shift = r % len(jobs)
        for key, cmd, env, read in jobs[shift:] + jobs[:shift]:
            results.setdefault(key, []).append(read(run_json(cmd, env)))
        print(f"latency round {r + 1}/{rounds} done", file=sys.stderr)
    return {k: median(v) for k, v in results.items()}


def build_folder(datasets, folder, count):
    """`count` real X-rays, spread evenly over every collection (sorted, every k-th), copied."""
    if folder.is_dir() and len(list(folder.iterdir())) == count:
        return
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    all_images = sorted(p for p in Path(datasets).rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg") and p.is_file())
    step = len(all_images) / count
    for i in range(count):
        src = all_images[int(i * step)]
        shutil.copyfile(src, folder / f"{i:04d}-{src.parent.name}-{src.name}")


def timed(cmd):
    started = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - started


def folder_scoring(folder, card_path, rounds):
    onnx = str(onnx_of(card_path, json.loads(Path(card_path).read_text())))
    out = Path(tempfile.mkdtemp())
    cxr_times, py_times = [], []
    for r in range(rounds):
        for label in (("cxr", "py") if r % 2 == 0 else ("py", "cxr")):
            if label == "cxr":
                (out / "cxr.csv").unlink(missing_ok=True)
                cxr_times.append(timed([str(ROOT / "target/release/cxr"), "score", str(folder), "--out", str(out / "cxr.csv"), "-m", str(card_path)]))
            else:
                py_times.append(timed(ORT + ["score", onnx, "--folder", str(folder), "--out", str(out / "py.csv")]))
        print(f"folder round {r + 1}/{rounds} done", file=sys.stderr)
    with open(out / "cxr.csv") as f:
        ours = {Path(r["path"]).name: float(r["p_covid"]) for r in csv.DictReader(f) if r["p_covid"]}
    with open(out / "py.csv") as f:
        theirs = {Path(r["path"]).name: float(r["p_covid"]) for r in csv.DictReader(f)}
    diffs = sorted(abs(ours[k] - theirs[k]) for k in ours if k in theirs)
    shutil.rmtree(out)
    return {
        "images": len(list(folder.iterdir())),
        "cxr_s": median(cxr_times),
        "py_s": median(py_times),
        "compared": len(diffs),
        "median_abs_diff": median(diffs),
        "max_abs_diff": diffs[-1] if diffs else None,
    }


def first_probability(cmd):
    """Seconds from starting `cmd` to the first line of stdout that holds a probability, and the
    process's peak resident memory in MiB (the kernel's own maximum, read when it is reaped)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
    elapsed = None
    for line in proc.stdout:
        if "P(covid)" in line and elapsed is None:
            elapsed = time.perf_counter() - started
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if elapsed is None:
        raise RuntimeError(f"{cmd} printed no probability")
    return elapsed, usage.ru_maxrss / 1024


def cold_start(image, card_path, runs):
    """`cxr predict` with its embedded model against Python + onnxruntime on the same file (the card's)."""
    card = json.loads(Path(card_path).read_text())
    onnx = str(onnx_of(card_path, card))
    ours, theirs = [], []
    first_probability([str(ROOT / "target/release/cxr"), "predict", image])  # page cache warm for both
    first_probability(ORT + ["predict", onnx, image])
    for _ in range(runs):
        ours.append(first_probability([str(ROOT / "target/release/cxr"), "predict", image]))
        theirs.append(first_probability(ORT + ["predict", onnx, image]))
    return {
        "cxr_ms": 1e3 * median([t for t, _ in ours]),
        "py_ms": 1e3 * median([t for t, _ in theirs]),
        "cxr_mib": median([m for _, m in ours]),
        "py_mib": median([m for _, m in theirs]),
        "runs": runs,
        "model": card["name"],
    }


def node_profile():
    """tract's per-node profile from the node_profile benchmark (its printed table)."""
    out = subprocess.run(["cargo", "bench", "--quiet", "--bench", "node_profile"], capture_output=True, text=True, cwd=ROOT, env={**os.environ, "CXR_BENCH_MODELS": os.environ.get("CXR_BENCH_MODELS", "")})
    return out.stdout.strip() if out.returncode == 0 else f"(node profile failed: {out.stderr.strip()[-500:]})"


# ------------------------------------------------------------------ the machine

def machine():
    cpu = sh("lscpu | sed -n 's/^Model name: *//p'") or platform.processor()
    flags = sh("grep -o -w 'avx512f\\|avx2\\|fma\\|neon\\|asimd' /proc/cpuinfo | sort -u | tr '\\n' ' '")
    lock = (ROOT / "Cargo.lock").read_text()
    version = lambda name: (re.search(rf'name = "{name}"\nversion = "([^"]+)"', lock) or [None, "?"])[1]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "flags": flags,
        "memory": sh("free -g | awk '/Mem:/ {print $2 \" GiB\"}'"),
        "os": sh(". /etc/os-release && echo $PRETTY_NAME") + ", Linux " + platform.release(),
        "rustc": sh("rustc --version"),
        "tract": version("tract-onnx"),
        "tch": version("tch"),
        "onnxruntime": subprocess.run([PY, "-c", "import onnxruntime; print(onnxruntime.__version__)"], capture_output=True, text=True).stdout.strip(),
        "python": platform.python_version(),
    }


def loadavg():
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# ------------------------------------------------------------------ the report

def fmt(v, unit="", digits=2):
    return "—" if v is None else f"{v:.{digits}f}{unit}"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def write_report(path, m, load_before, load_after, rounds, runs, model_list, lat, loads, folder, cold, profile, image):
    lines = []
    add = lines.append
    add("# Benchmarks")
    add("")
    add("Written by `bash scripts/benchmark.sh` (one run; it installs onnxruntime, Pillow and numpy into `.venv`,")
    add("libtorch into `.torch`, builds `cxr` and the libtorch example in release mode, then runs")
    add("`scripts/benchmark_report.py`). Every comparison below was measured in that one run, interleaved")
    add(f"(A B C … A B C …, {rounds} rounds, order rotated each round); each figure is the median over rounds of the")
    add("round's median. Ratios are ours / theirs: below 1 means cxr is faster. Do not compare these")
    add("absolute times with another machine's, only the ratios.")
    add("")
    add("## Machine")
    add("")
    add(f"- CPU: {m['cpu']}, {m['cores']} cores ({m['flags'].strip()}), {m['memory']} memory; {m['os']}")
    add(f"- Load average (1/5/15 min) at start {load_before}, at end {load_after}: the machine is shared, so")
    add("  absolute times are noisy; the interleaving keeps the ratios fair.")
    add(f"- {m['rustc']}; tract {m['tract']} (via `cxr`, release build, thin LTO); onnxruntime {m['onnxruntime']} (PyPI, CPU")
    add(f"  provider, Python {m['python']}); libtorch 2.13.0 through tch {m['tch']} (`crates/cxr-train/examples/tch_latency.rs`).")
    add(f"- Image: `{Path(image).relative_to(Path(image).parents[2])}` (a real 512×512 NIH film), preprocessed by each")
    add("  model's card recipe; the same ONNX file for tract and onnxruntime.")
    add("")

    default = next((c for _, c in model_list if cold and c["name"] == cold["model"]), None)
    mobile = next((c for _, c in model_list if c["architecture"] == "mobilenet-v2" and c["precision"] == "fp32"), None)
    goal_rows = []
    if default:
        k = (default["name"], default["precision"], 1)
        ours, theirs = lat.get(k + ("tract",)), lat.get(k + ("ort-1t",))
        r = ratio(ours, theirs)
        goal_rows.append((f"default model (`{default['name']}`) single-image p50 ≤ 1.0 × onnxruntime single-thread", f"{fmt(r, '×')} ({fmt(ours, ' ms')} against {fmt(theirs, ' ms')})", r is not None and r <= 1.0))
        goal_rows.append((f"default model single-image p50 ≤ 10 ms on one core", f"{fmt(ours, ' ms')}", ours is not None and ours <= 10))
    for _, card in model_list:
        if card["precision"] != "int8":
            continue
        twin = card["name"].removesuffix("-int8")
        int8, fp32 = lat.get((card["name"], "int8", 1, "tract")), lat.get((twin, "fp32", 1, "tract"))
        if int8 is not None and fp32 is not None:
            goal_rows.append((f"`{card['name']}` no slower than `{twin}` in the form `cxr` runs it", f"{fmt(ratio(int8, fp32), '×')} ({fmt(int8, ' ms')} against {fmt(fp32, ' ms')})", int8 <= fp32))
    if mobile:
        r = ratio(lat.get((mobile["name"], "fp32", 1, "tract")), lat.get((mobile["name"], "fp32", 1, "ort-1t")))
        goal_rows.append((f"`{mobile['name']}` single-image latency ≤ 1.3 × onnxruntime single-thread", f"{fmt(r, '×')}", r is not None and r <= 1.3))
    if folder:
        speedup = ratio(folder["py_s"], folder["cxr_s"])
        goal_rows.append((f"scoring a {folder['images']}-image folder ≥ 2 × faster than Python (PIL + onnxruntime)", f"{fmt(speedup, '× faster')}", speedup is not None and speedup >= 2.0))
    if cold:
        goal_rows.append(("cold start (process start → first probability printed, embedded model) ≤ 50 ms", f"{fmt(cold['cxr_ms'], ' ms', 1)} (`{cold['model']}`)", cold["cxr_ms"] <= 50))
        goal_rows.append(("peak memory of `cxr predict IMAGE` (embedded model) ≤ 40 MiB", f"{fmt(cold['cxr_mib'], ' MiB', 1)}", cold["cxr_mib"] <= 40))
    add("## Goals")
    add("")
    add("| goal | measured | met |")
    add("|---|---|---|")
    for goal, value, met in goal_rows:
        add(f"| {goal} | {value} | {'yes' if met else '**no**'} |")
    add("")

    add("## Inference latency (ms per run of one batch)")
    add("")
    add("One process per figure: it loads the model, runs a few warm-up passes, then times")
    add(f"{runs} runs (a quarter as many for batch 8) of the preprocessed input. cxr: `cxr bench --jobs 1 --batch N`")
    add("(p50, one thread); \"tract, all cores\": the same with `--threads-per-image 0`, tract's matrix products split")
    add("over a pool of one thread per core (`crates/cxr-infer/src/threads.rs`; `cxr score` scales across images instead).")
    add("onnxruntime: `scripts/bench_onnxruntime.py latency` with 1 intra-op thread and with its default (all cores).")
    add("libtorch: the same network built by `cxr_train::zoo` (fresh weights; latency does not depend on them),")
    add("eager mode, BatchNorm unfolded as in training, at the card's input size and classes; int8 files have no")
    add("libtorch counterpart. int8 files run in the form `cxr` picks: float products of their int8 numbers")
    add("(`crates/cxr-infer/src/int8_float.rs`); \"graph as written\" is then tract's own integer kernels.")
    add("\"graph as written\": tract on the ONNX exactly as the file has it (`CXR_GRAPH_FORM=onnx`); \"cxr\" is")
    add("what `cxr` runs: the same file, with a patch-convolution opening cut off at load time and computed by cxr's")
    add("own kernel, and depthwise convolutions computed by cxr's depthwise kernel, tract running the rest")
    add("(`crates/cxr-infer/src/patch_input.rs`, `patch_opening.rs`, `depthwise.rs`; cxr's 1×1 kernel, `pointwise.rs`, in plans of several images; same probabilities, checked by")
    add("their tests).")
    add("")
    add("| model | prec. | test AUC | size | load ms | batch | cxr | tract, graph as written | tract, all cores | ort 1 thread | ort all | libtorch 1 thread | libtorch all | cxr / ort 1t | cxr / ort, all cores |")
    add("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for card_path, card in model_list:
        size = onnx_of(card_path, card).stat().st_size / 1e6
        for batch in (1, 8):
            k = (card["name"], card["precision"], batch)
            get = lambda who: lat.get(k + (who,))
            auc = test_auc(card)
            add(f"| `{card['name']}` | {card['precision']} | {fmt(auc, '', 3) if auc else 'untrained'} | {size:.1f} MB | {fmt(loads.get(card['name']), '', 1)} | {batch} | "
                f"{fmt(get('tract'))} | {fmt(get('tract-as-written'))} | {fmt(get('tract-all'))} | {fmt(get('ort-1t'))} | {fmt(get('ort-all'))} | {fmt(get('tch-1t'))} | {fmt(get('tch-all'))} | **{fmt(ratio(get('tract'), get('ort-1t')), '×')}** | {fmt(ratio(get('tract-all'), get('ort-all')), '×')} |")
    add("")
    add("Models come from `models/*.card.json`; an architecture with no shipped model yet is exported for")
    add("timing only (`crates/cxr-train/examples/bench_model.rs`, ImageNet backbone, untrained head: its")
    add("`-bench` card says so). Test AUC is the card's, re-checked in CI by `tests/model_accuracy.rs`.")
    add("")

    if folder:
        add(f"## Scoring a folder of {folder['images']} real X-rays (seconds, whole process)")
        add("")
        add("`cxr score FOLDER --out results.csv -m models/seed-cnn.card.json` (all cores, one session per worker) against")
        add("`scripts/bench_onnxruntime.py score` (what a Python user writes: walk the folder, PIL open → grey →")
        add("bilinear resize → numpy, one `session.run` per image, onnxruntime's default threads). The folder")
        add("holds every k-th image of all collections in `../shared/datasets` (JPEG and PNG, 224 px and up).")
        add("")
        add("| cxr score | Python PIL + onnxruntime | speed-up | agreement of P(covid) (median / max abs diff) |")
        add("|---|---|---|---|")
        add(f"| {fmt(folder['cxr_s'], ' s')} | {fmt(folder['py_s'], ' s')} | **{fmt(ratio(folder['py_s'], folder['cxr_s']), '×')}** | "
            f"{fmt(folder['median_abs_diff'], '', 4)} / {fmt(folder['max_abs_diff'], '', 4)} over {folder['compared']} images |")
        add("")
        add("The two differ only in resampling (PIL's bilinear filter against cxr's area-average-then-bilinear), hence")
        add("the small probability differences.")
        add("")
    if cold:
        add("## Cold start (ms, process start → first probability on stdout)")
        add("")
        add(f"`cxr predict IMAGE` with the embedded default model (`{cold['model']}`), against `scripts/bench_onnxruntime.py predict` (Python start,")
        add(f"imports, session creation), alternated, {cold['runs']} runs each after one warm-up each (files in the page cache).")
        add("")
        add("| | cxr predict (embedded model) | Python + onnxruntime |")
        add("|---|---|---|")
        add(f"| time to first probability | **{fmt(cold['cxr_ms'], ' ms', 1)}** | {fmt(cold['py_ms'], ' ms', 1)} |")
        add(f"| peak resident memory (the kernel's maximum for the process) | **{fmt(cold['cxr_mib'], ' MiB', 1)}** | {fmt(cold['py_mib'], ' MiB', 1)} |")
        add("")
    add("## Where tract's time goes")
    add("")
    add("`cargo bench --bench node_profile`: the optimised tract plan run node by node with a clock around each")
    add("node (`cxr_infer::Model::profile`), medians per node, slowest first.")
    add("")
    add("```")
    add(profile)
    add("```")
    add("")
    lines.extend(analysis(lat, model_list))
    lines.extend(arm_section(path))
    Path(path).write_text("\n".join(lines) + "\n")


def arm_section(path):
    """The ARM instruction-count section of the report being replaced, kept as it was: counts
    under qemu come from scripts/arm-instruction-counts.sh (cross builds and an emulator, about
    half an hour), not from this run, and do not depend on the machine's load."""
    old = Path(path).read_text() if Path(path).is_file() else ""
    if ARM_SECTION not in old:
        return []
    kept = old[old.index(ARM_SECTION):].rstrip("\n").split("\n")
    note = "(Counts, not times: from `scripts/arm-instruction-counts.sh`, kept from its own run; `scripts/benchmark.sh` does not re-run it.)"
    if note not in kept:
        kept[1:1] = ["", note]
    return kept + [""]


def analysis(lat, model_list):
    """What was ours and fixed, and what is tract's own, with this run's figures."""
    out = ["## What we fixed, and what is tract's own", ""]
    rewritten = []
    for _, card in model_list:
        k = (card["name"], card["precision"], 1)
        before, after = lat.get(k + ("tract-as-written",)), lat.get(k + ("tract",))
        if before and after and before / after > 1.2:
            rewritten.append(f"`{card['name']}` {before:.2f} → {after:.2f} ms ({before / after:.1f}× faster)")
    if rewritten:
        out.append(f"- **Graph form, ours: {'; '.join(rewritten)}.** The per-node")
        out.append("  profile of the seed CNN's file as written showed ~85 % of the time in two tract kernels: the lazy im2col gather")
        out.append("  feeding the 3×3 stride-3 first convolution, and tract's NCHW 2×2/2 max pool, whose SIMD path only")
        out.append("  covers stride 1 (`maxpool_2x2_f32` in tract-core walks stride 2 pixel by pixel). `cxr_infer::patch_input`")
        out.append("  now rewrites such an opening at load time: preprocessing writes the image as patches laid out by")
        out.append("  pool phase (no gather), the card's normalisation and the three copies of the grey plane fold into")
        out.append("  the convolution's weights (a third of the arithmetic), and the graph is cut after the pool:")
        out.append("  `cxr_infer::patch_opening` computes convolution, max over the four phases and ReLU in one pass")
        out.append("  (AVX-512 or AVX2/FMA intrinsics on x86-64, picked at run time; plain Rust elsewhere), writing only")
        out.append("  the pooled values, and tract runs the rest. An int8 file's opening is the same pass with its values")
        out.append("  rounded onto the input's and the output's quantization grids. Handed to tract as a 1×1 convolution")
        out.append("  plus a `Max` of phases, the same opening took 0.66 of the 0.92 ms (tract's planner puts the 64")
        out.append("  channels on the 2-wide side of a 40×2 kernel and stores all four phases). Same probabilities (unit")
        out.append("  tests, ≤ 1e-5 on real X-rays); the ONNX file and its sha256 are untouched. onnxruntime runs the")
        out.append("  file as written. Each inner loop of the opening is timed side by side by `cargo bench --bench opening`.")
        out.append("  Depthwise convolutions (EfficientNet-Lite0, MobileNetV2) were the other waste: tract 0.23 has no")
        out.append("  vectorised depthwise kernel for the channel-first layout on x86 or ARM and walks each channel's plane")
        out.append("  zone by zone, so a 7×7 plane of 1,152 channels cost as much as a 14×14 plane of 480 (about 1 ms each).")
        out.append("  `cxr_infer::depthwise` replaces them at load time by one op that copies each plane once into a")
        out.append("  zero-bordered buffer split by stride phase and computes its rows eight pixels at a time, eight such")
        out.append("  blocks in flight (plain Rust, compiled once more for AVX2/FMA and picked at run time).")
    out += [
        "- **Preprocessing, ours.** With the rewrite, normalisation and the RGB copies are gone from the",
        "  per-image path: preprocessing is one resize plus one strided copy into the patch layout.",
        "- **Threads inside one image, ours to turn on, tract's to split:** `--threads-per-image N` (`cxr predict`,",
        "  `cxr bench`, `cxr-minimal`, `cxr-watch`) runs a model under tract-linalg's `multithread-mm` pool, which",
        "  splits matrix products and their packing only; depthwise convolutions (cxr's or tract's), pooling and element-wise ops stay",
        "  on one thread, so the gain is the share of time in matrix products (the node profile below). The",
        "  default stays 1: `cxr score` already keeps every core busy with one image each.",
        "- **tract's own, not changed here:** the scalar",
        "  stride-2 max pool and the im2col gather above (any model whose opening is not a patch convolution,",
        "  e.g. MobileNetV2's padded stride-2 stem, still pays tract's general convolution path); `Reduce<Max>`",
        "  over strided axes (tried as a pool replacement: ~40× slower than the pool it replaced); per-image cost of",
        "  8-image plans above 1-image plans for the graph as written (im2col materialised per batch).",
        "- **int8 (QLinearConv), tract's own**: tract's integer kernels are the \"graph as written\" column of the",
        "  int8 rows; `cxr` runs int8 files as float products of the same int8 numbers instead (the \"cxr\"",
        "  column). That is fp32's arithmetic plus the rounding onto each quantization grid, so on x86 an int8",
        "  file cannot be faster than its fp32 twin: ship fp32 unless the 4× smaller file is what matters.",
        "- **Batch 8**: 8-image plans may cost more per image than 1-image plans in tract; `cxr score` runs",
        "  1-image plans, one per core.",
        "- **Cold start** is load (read, sha256, protobuf, tract's analysis and optimisation of the graph) plus",
        "  one decode and inference; the load column above is most of it.",
        "",
    ]
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=50, help="timed runs per single-image latency figure")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--extra-models", default=str(ROOT / "target/bench-models"))
    parser.add_argument("--tch", default=str(ROOT / "target/release/examples/tch_latency"))
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    args = parser.parse_args()
    datasets = os.environ.get("CXR_DATASETS", str(ROOT.parent / "shared/datasets"))
    image = str(sorted((Path(datasets) / "nih-chestxray14-sample/No_findings").iterdir())[0])
    tch = args.tch if Path(args.tch).is_file() else None

    load_before = loadavg()
    m = machine()
    model_list = models(args.extra_models)
    print("models:", ", ".join(c["name"] for _, c in model_list), file=sys.stderr)
    lat = interleaved(latency_jobs(model_list, image, args.runs, tch), args.rounds)
    loads = load_times(model_list, image, args.rounds)
    folder_dir = ROOT / "target/bench-folder"
    build_folder(datasets, folder_dir, args.images)
    seed_card = ROOT / "models/seed-cnn.card.json"
    folder = folder_scoring(folder_dir, seed_card, args.rounds) if seed_card.is_file() else None
    # The model `cxr predict` runs without --model: the one models/DEFAULT names, compiled in.
    # Without models/DEFAULT the binary embeds no model (build.rs), so there is no cold start to time.
    default = ROOT / "models/DEFAULT"
    default_card = ROOT / "models" / f"{default.read_text().strip()}.card.json" if default.is_file() else None
    cold = cold_start(image, default_card, 4 * args.rounds) if default_card and default_card.is_file() else None
    profile = node_profile()
    load_after = loadavg()
    write_report(args.out, m, load_before, load_after, args.rounds, args.runs, model_list, lat, loads, folder, cold, profile, image)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
