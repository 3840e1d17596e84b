"""Latency of one slider update in `dcvae app` (the editor in the browser), on the default model.

A slider update runs ``model.edit(z, {name: strength})`` on the image's latent, decodes it and sends the PNG back.
Measured three ways, each over ``--updates`` updates (default 200) with a different strength each time, after five
untimed warm-up updates, interleaved update by update (so a busy spell of the machine slows each alike):

- ``handler``: the page's edit handler (``Editor.edit``: edit, decode, crop to a PIL image), in process;
- ``server``: the handler plus gradio's postprocessing of the result (the PNG written to its cache): the
  server-side time of one update, which the target (p95 < 150 ms on the 2-core development machine) is about;
- ``round trip``: a local HTTP client (gradio_client, the page's own API) asking the running app for the update and
  receiving the answer: server-side time plus gradio's queue and transport, an upper bound of what a browser waits.

Needs the app extra (``pip install "dcvae-tools[app]"``). Torch runs on its default threads. Other processes on the
machine slow every figure down: the load average at the start is recorded in the results and printed.

    python -m benchmarks.app_latency [--updates 200]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common

EXAMPLE = common.ROOT / "docs" / "examples" / "fashion-mnist" / "tshirt.png"
ATTRIBUTE = "long_sleeves"


def _percentiles(times: list[float]) -> dict[str, Any]:
    ordered = sorted(times)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]

    return {"p50_ms": 1000 * statistics.median(ordered), "p95_ms": 1000 * at(0.95), "max_ms": 1000 * ordered[-1],
            "mean_ms": 1000 * statistics.fmean(ordered), "updates": len(ordered)}


def _strength(i: int, low: float, high: float) -> float:
    """A different strength each update, sweeping the slider back and forth."""
    share = (i * 0.037) % 2.0
    share = share if share <= 1.0 else 2.0 - share
    return round(low + share * (high - low), 2)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def measure(updates: int) -> dict[str, Any]:
    from dcvae_tools.app import launch, require_gradio

    require_gradio()
    from gradio_client import Client, handle_file

    from dcvae_tools.app.handlers import Editor

    editor = Editor(offline=True)
    lm = editor.load(None)
    index = next(i for i, d in enumerate(lm.directions) if d.key == ATTRIBUTE)
    direction = lm.directions[index]
    z = editor.encode(lm.spec, str(EXAMPLE))

    def values(i: int) -> list[float]:
        row = [0.0] * len(lm.directions)
        row[index] = _strength(i, direction.minimum, direction.maximum)
        return row

    port = _free_port()
    demo = launch(host="127.0.0.1", port=port, block=False, quiet=True, offline=True)
    try:
        shown = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "dcvae-edited")
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=False)
        client.predict(handle_file(str(EXAMPLE)), *[0.0] * len(lm.directions), api_name="/image")
        padding = [0.0] * (len(client.view_api(print_info=False, return_format="dict")["named_endpoints"]
                                 [f"/edit_{index}"]["parameters"]) - len(lm.directions))

        def round_trip(i: int) -> None:
            _, status = client.predict(*values(i), *padding, api_name=f"/edit_{index}")
            if status:
                raise RuntimeError(f"the app answered with an error: {status}")

        paths: dict[str, Callable[[int], Any]] = {
            "handler": lambda i: editor.edit(lm.spec, z, values(i)),
            "server (handler + gradio postprocess)": lambda i: shown.postprocess(editor.edit(lm.spec, z, values(i))),
            "round trip (local HTTP client)": round_trip,
        }
        times: dict[str, list[float]] = {name: [] for name in paths}
        for i in range(-5, updates):  # interleaved, so a busy spell of the machine hits every path alike
            for name, fn in paths.items():
                start = time.perf_counter()
                fn(i)
                if i >= 0:  # the first five are warm-up
                    times[name].append(time.perf_counter() - start)
        client.close()
    finally:
        demo.close()
    rows = [{"path": name, **_percentiles(t)} for name, t in times.items()]
    return {"rows": rows, "model": lm.name, "attribute": ATTRIBUTE, "unit": direction.unit,
            "image": str(EXAMPLE.relative_to(common.ROOT)), "target": "server p95 < 150 ms"}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=200, help="timed slider updates per path")
    args = parser.parse_args(argv)
    info = common.machine_info()
    print(common.header("dcvae app: one slider update", info))
    print(f"# load average (1 min) at the start: {info['load_average_1min']:.2f} on {info['cpu_count']} CPUs")
    result = {"machine": info, **measure(args.updates)}
    server = result["rows"][1]
    result["target_met"] = server["p95_ms"] < 150
    print(f"model {result['model']}, slider {result['attribute']} ({result['unit']}), image {result['image']}")
    print(common.format_table(result["rows"], [
        ("path", "path", ""), ("p50_ms", "p50 ms", ".1f"), ("p95_ms", "p95 ms", ".1f"), ("max_ms", "max ms", ".1f"),
        ("updates", "updates", "d"),
    ]))
    print(f"target: server-side p95 < 150 ms: {'met' if result['target_met'] else 'NOT met'} "
          f"({server['p95_ms']:.1f} ms)")
    result["machine"]["load_average_1min_end"] = common.machine_info()["load_average_1min"]
    path = common.write_json("app_latency", result)
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
