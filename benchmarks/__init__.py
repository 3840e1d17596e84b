"""Speed, memory and start-up benchmarks for dcvae-tools, each figure also as a share of the machine's limit.

One module per concern, each runnable on its own (``python -m benchmarks.NAME``) and all together with
``python benchmarks/run.py``; results go to ``benchmarks/results/NAME.json`` (see docs/benchmarks.md).
"""
