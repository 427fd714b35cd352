#!/usr/bin/env python3
"""What one image costs through the `cxr` Python package against the `cxr` CLI: same film, same model.

    python scripts/python-overhead.py CXR_BINARY MODEL.onnx FILM [--images N] [--rounds R]

Run it with the Python the wheel is installed in; build the wheel and the binary in release mode.
Each round measures three things, interleaved, the order rotated from round to round:

    cli      (wall time of `cxr predict -m MODEL FILM×N` - that of `cxr predict -m MODEL FILM`) / (N - 1):
             the CLI's time per image (read, decode, preprocess, run), process start and model load cancelled
    predict  N calls of `Model.predict(FILM)` in a loop, total / N
    batch    one `Model.predict_batch([FILM] * N)`, / N

Each is timed twice: wall-clock, and CPU time (user + system, of this thread for the Python calls
and of the child processes for the CLI), which another load on a shared machine disturbs less.
It prints every round, then the median over rounds of each and how much more the Python calls
take per image than the CLI, in percent of the CLI's time.
"""

import argparse
import resource
import statistics
import subprocess
import time

import cxr


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cli_per_image(binary, model, film, n):
    """(wall, cpu) seconds per image."""

    def run(count):
        wall, cpu = time.perf_counter(), children_cpu()
        subprocess.run([binary, "predict", "-m", model] + [film] * count, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - wall, children_cpu() - cpu

    (wall_n, cpu_n), (wall_1, cpu_1) = run(n), run(1)
    return (wall_n - wall_1) / (n - 1), (cpu_n - cpu_1) / (n - 1)


def timed(call, n):
    """(wall, cpu) seconds of `call()`, divided by n."""
    wall, cpu = time.perf_counter(), time.thread_time()
    call()
    return (time.perf_counter() - wall) / n, (time.thread_time() - cpu) / n


def predict_per_image(py_model, film, n):
    def calls():
        for _ in range(n):
            py_model.predict(film)

    return timed(calls, n)


def batch_per_image(py_model, film, n):
    return timed(lambda: py_model.predict_batch([film] * n), n)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary")
    parser.add_argument("model")
    parser.add_argument("film")
    parser.add_argument("--images", type=int, default=200, help="images per measurement (default 200)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    args = parser.parse_args()

    py_model = cxr.Model(args.model)
    for _ in range(5):
        py_model.predict(args.film)
    cli_per_image(args.binary, args.model, args.film, 2)

    runs = {
        "cli": lambda: cli_per_image(args.binary, args.model, args.film, args.images),
        "predict": lambda: predict_per_image(py_model, args.film, args.images),
        "batch": lambda: batch_per_image(py_model, args.film, args.images),
    }
    names = list(runs)
    times = {name: [] for name in names}
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            times[name].append(runs[name]())
        print(
            f"round {r + 1}, ms per image (wall / cpu): "
            + ", ".join(f"{name} {times[name][-1][0] * 1e3:.3f} / {times[name][-1][1] * 1e3:.3f}" for name in names),
            flush=True,
        )

    print(f"medians over {args.rounds} rounds of {args.images} images, ms per image:")
    for kind, k in (("wall", 0), ("cpu", 1)):
        median = {name: statistics.median(t[k] for t in times[name]) for name in names}
        line = f"  {kind:4}  cli {median['cli'] * 1e3:.3f}"
        for name in names[1:]:
            line += f", {name} {median[name] * 1e3:.3f} ({(median[name] / median['cli'] - 1) * 100:+.1f} %)"
        print(line)


if __name__ == "__main__":
    main()
