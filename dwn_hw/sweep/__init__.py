"""``dwn-hw sweep``: multi-objective search (validation accuracy, LUTs on a board) on Optuna.

Modules: :mod:`~dwn_hw.sweep.space` (search spaces), :mod:`~dwn_hw.sweep.objective` (one trial:
train, freeze, export, synthesize), :mod:`~dwn_hw.sweep.study` (storage, samplers, the worker
loop), :mod:`~dwn_hw.sweep.outputs` (trials.csv, pareto.json, pareto.png, ``--from``),
:mod:`~dwn_hw.sweep.cli` (the command). Optuna is an optional dependency (``pip install
'dwn-hw[sweep]'``); nothing here is imported by the rest of dwn_hw.
"""
