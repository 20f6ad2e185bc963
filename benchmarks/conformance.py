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
    """What a refusal names, shortened: "Projection 'Ce': the on_pre statement 'ge += we'"."""
    first = message.strip()
    m = re.search(r"cannot run (.*)", first)
    text = m.group(1) if m else first
    text = re.sub(r"\s*\([^()]*\)", "", text)          # drop explanations in brackets
    text = re.split(r";\s*targets that accept", text, flags=re.I)[0]
    text = re.sub(r"(\\n|\s)+", " ", text).strip().rstrip(".;")   # code quoted in the message
    return text if len(text) <= 64 else text[:64].rsplit(" ", 1)[0] + " ..."


def _short(how: str) -> str:
    """The compact form of an agreement: 'identical', '<= 1e-09 (1.1e-16)', 'stat'."""
    if how.startswith("identical"):
        return how
    m = re.match(r"max\|diff\| (\S+) \(<= atol (\S+)\)", how)
    if m:
        return f"{m.group(1)} (atol {m.group(2)})"
    if how.startswith("stat:"):
        return "stat, in band"
    return how[:90]


def judge(model, target, scale, result) -> dict:
    """The cell as stored in matrix.json: status, ok, detail (the message or the
    agreement measured), phase of a failure, wall times."""
    row = {"status": result["status"], "build_s": result.get("build_s"),
           "run_s": result.get("run_s"), "phase": result.get("phase")}
    if result["status"] == "refused":
        row["detail"] = result["message"]
        listed = h.accepted_targets(result["message"])
        row["ok"] = bool(listed) and target not in listed and \
            h.names_a_construct(result["message"], h.circuit(model, scale, 0))
    elif result["status"] == "failed":
        row["ok"], row["detail"] = False, result["message"]
    else:
        row["ok"], row["detail"] = h.compare(model, target, result["obs"],
                                             h.reference(model, scale, 0), scale)
    return row


def _detail(c) -> str:
    # rows written before "detail" existed kept the message in "message"/"how"/"text"
    return c.get("detail") or c.get("message") or c.get("how") or \
        c.get("text", "").split(": ", 1)[-1]


def cell_text(c, model, target) -> str:
    detail = _detail(c)
    if c["status"] == "refused":
        text = f"refused: {_construct(detail)}"
        if not c["ok"]:
            text += " (**REFUSAL WITHOUT CONSTRUCT OR TARGET LIST**)"
    elif c["status"] == "failed":
        phase = c.get("phase") or (re.findall(r"during (\w+)", c.get("text", "")) or ["run"])[0]
        text = f"**FAILED during {phase}**"
    else:
        wall = (c.get("build_s") or 0) + (c.get("run_s") or 0)
        text = (_short(detail) if c["ok"] else "**DIFFERS**") + f", {wall:.1f} s"
    options = h.TARGET_OPTIONS.get((model, target))
    if options:
        text += f" (with {', '.join(options)})"
    return text.replace("|", "/")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="the examples' own sizes (scale 1)")
    ap.add_argument("--models", nargs="*", default=h.MODELS)
    ap.add_argument("--targets", nargs="*", default=h.TARGET_NAMES)
    ap.add_argument("--no-readme", action="store_true", help="do not update README.md")
    ap.add_argument("--from-json", action="store_true",
                    help="write the tables from the last matrix.json instead of running")
    args = ap.parse_args(argv)
    suffix = "_full" if args.full else ""
    matrix = {}
    saved = os.path.join(OUT, f"matrix{suffix}.json")
    if args.from_json or os.path.exists(saved):
        # rerunning some models or targets updates those cells of the saved matrix
        with open(saved) as f:
            matrix = json.load(f)
    if args.from_json:
        args.models = []
    for model in args.models:
        scale = 1.0 if args.full else h.CI_SCALE[model]
        t0 = time.perf_counter()
        h.reference(model, scale, 0)
        plain_s = time.perf_counter() - t0
        if matrix.get(model, {}).get("scale") != scale:
            matrix[model] = {"cells": {}}
        matrix[model].update(scale=scale, plain_s=plain_s)
        for target in args.targets:
            result = h.run_cell_isolated(model, target, scale, 0)
            row = judge(model, target, scale, result)
            matrix[model]["cells"][target] = row
            print(f"{model:13s} {target:13s} {cell_text(row, model, target)}: "
                  f"{row['detail'][:300]}", flush=True)
    os.makedirs(OUT, exist_ok=True)
    if not args.from_json:
        with open(os.path.join(OUT, f"matrix{suffix}.json"), "w") as f:
            json.dump(matrix, f, indent=1, default=str)
    targets = [t for t in h.TARGET_NAMES if all(t in r["cells"] for r in matrix.values())]
    table = render(matrix, targets, args.full)
    with open(os.path.join(OUT, f"matrix{suffix}.md"), "w") as f:
        f.write(table + details(matrix, targets))
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
    lines = [f"**Conformance matrix**, {size}, seed 0 (`python benchmarks/conformance.py"
             f"{' --full' if full else ''}`; rules in `tests/conformance/harness.py`, every "
             "cell with its full message in `benchmarks/results/conformance/matrix"
             f"{'_full' if full else ''}.md`). Each cell: agreement with the model's plain "
             "Brian2 script (*identical*; the largest difference under an absolute "
             "tolerance; *stat*: summary statistics of seed 0 within the 0.1 % prediction "
             "interval (Student's t) of the plain script over seeds 0-9 (0-4 for cuba and "
             f"vogels{', brunel_2000, stdp and jeffress' if full else ''}), or a stated "
             "relative band) and the wall time "
             "(construction + run, compilation included); *refused*: a `CircuitError` at "
             "construction naming the construct and the targets that accept the circuit.",
             "", "| model (scale) | plain Brian2 | " + " | ".join(targets) + " |",
             "|---|---|" + "---|" * len(targets)]
    for model, r in matrix.items():
        cells = [cell_text(r["cells"][t], model, t) for t in targets]
        lines.append(f"| {model} ({r['scale']:g}) | {r['plain_s']:.1f} s | " +
                     " | ".join(cells) + " |")
    lines += ["", "Models: " + "; ".join(f"`{m}` {EXAMPLES[m][2]}" for m in matrix) + ".", ""]
    return "\n".join(lines)


def details(matrix, targets) -> str:
    lines = ["", "## Every cell", ""]
    for model, r in matrix.items():
        for t in targets:
            c = r["cells"][t]
            lines.append(f"* **{model} / {t}** ({'ok' if c['ok'] else 'FAILING'}): "
                         f"{_detail(c)}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
