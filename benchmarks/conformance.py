"""The conformance matrix: every Brian2 example model on every target.

    python benchmarks/conformance.py            # reduced sizes (CI's)
    python benchmarks/conformance.py --full     # the examples' own sizes

Each cell runs in a fresh interpreter (tests/conformance/harness.py), is
compared with the model's plain Brian2 script under the rule stated in the
harness (identical / absolute tolerance / statistical over seeds), and is timed
(build: constructing the target; run: the protocol, compilation included for
brian2-cpp). Writes ``benchmarks/results/conformance/matrix.md`` (and
``matrix.json``) and replaces the table between the conformance markers in
README.md.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

from conformance import harness as h  # noqa: E402

OUT = os.path.join(ROOT, "benchmarks", "results", "conformance")
BEGIN, END = "<!-- conformance:begin -->", "<!-- conformance:end -->"


def _construct(message: str) -> str:
    """The first sentence of a refusal (what it names), without the target list."""
    first = re.split(r"(?<=[.;])\s", message.strip(), maxsplit=1)[0]
    return first.rstrip(".;")[:110]


def judge(model, target, scale, result) -> dict:
    row = {"status": result["status"], "build_s": result.get("build_s"),
           "run_s": result.get("run_s")}
    if result["status"] == "refused":
        row["text"] = f"refused: {_construct(result['message'])}"
        row["message"] = result["message"]
        listed = h.accepted_targets(result["message"])
        row["ok"] = bool(listed) and target not in listed and \
            h.names_a_construct(result["message"], h.circuit(model, scale, 0))
        if not row["ok"]:
            row["text"] += " (REFUSAL WITHOUT CONSTRUCT OR TARGET LIST)"
    elif result["status"] == "failed":
        row["ok"] = False
        row["text"] = f"FAILED during {result['phase']}: {result['message'][:160]}"
    else:
        ok, how = h.compare(model, target, result["obs"], h.reference(model, scale, 0), scale)
        row["ok"], row["how"] = ok, how
        wall = (result["build_s"] or 0) + (result["run_s"] or 0)
        row["text"] = (how if ok else f"DIFFERS: {how}") + f" ({wall:.1f} s)"
    options = h.TARGET_OPTIONS.get((model, target))
    if options:
        row["text"] += f" [with {', '.join(f'{k}={v}' for k, v in options.items())}]"
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="the examples' own sizes (scale 1)")
    ap.add_argument("--models", nargs="*", default=h.MODELS)
    ap.add_argument("--targets", nargs="*", default=h.TARGET_NAMES)
    ap.add_argument("--no-readme", action="store_true", help="do not update README.md")
    args = ap.parse_args(argv)
    matrix = {}
    for model in args.models:
        scale = 1.0 if args.full else h.CI_SCALE[model]
        t0 = time.perf_counter()
        h.reference(model, scale, 0)
        plain_s = time.perf_counter() - t0
        matrix[model] = {"scale": scale, "plain_s": plain_s, "cells": {}}
        for target in args.targets:
            result = h.run_cell_isolated(model, target, scale, 0)
            row = judge(model, target, scale, result)
            matrix[model]["cells"][target] = row
            print(f"{model:13s} {target:13s} {row['text']}", flush=True)
    os.makedirs(OUT, exist_ok=True)
    suffix = "_full" if args.full else ""
    with open(os.path.join(OUT, f"matrix{suffix}.json"), "w") as f:
        json.dump(matrix, f, indent=1, default=str)
    table = render(matrix, args.targets, args.full)
    with open(os.path.join(OUT, f"matrix{suffix}.md"), "w") as f:
        f.write(table)
    if not args.no_readme and not args.full:
        readme = os.path.join(ROOT, "README.md")
        text = open(readme).read()
        if BEGIN in text and END in text:
            head, rest = text.split(BEGIN, 1)
            _, tail = rest.split(END, 1)
            with open(readme, "w") as f:
                f.write(head + BEGIN + "\n" + table + END + tail)
    bad = [(m, t) for m, r in matrix.items() for t, c in r["cells"].items() if not c["ok"]]
    print(f"{len(bad)} failing cell(s): {bad}" if bad else "every cell agrees or refuses")
    return 1 if bad else 0


def render(matrix, targets, full) -> str:
    from neurosim.circuits.brian2_examples import EXAMPLES
    size = "full sizes" if full else "reduced sizes (CI)"
    lines = [f"Conformance matrix, {size}, seed 0 (`python benchmarks/conformance.py"
             f"{' --full' if full else ''}`; rules in `tests/conformance/harness.py`). "
             "Each cell: agreement with the model's plain Brian2 script and wall time "
             "(target construction + run, compilation included); *refused*: a "
             "`CircuitError` at construction naming the construct.", "",
             "| model (scale) | plain Brian2 | " + " | ".join(targets) + " |",
             "|---|---|" + "---|" * len(targets)]
    for model, r in matrix.items():
        cells = [r["cells"][t]["text"].replace("|", "/") for t in targets]
        lines.append(f"| {model} ({r['scale']:g}) | {r['plain_s']:.1f} s | " +
                     " | ".join(cells) + " |")
    lines += ["", "Models: " + "; ".join(f"`{m}` {EXAMPLES[m][2]}" for m in matrix), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
