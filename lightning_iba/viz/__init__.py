"""Displays of attributions and evaluation results.

terminal: one line per token with a bar; html: a standalone highlighted page; heatmap: rows x
tokens PNG (layers, betas); curves: degradation curves PNG (methods, sweeps). Import the
submodules directly; seaborn and matplotlib load only when the PNG writers are imported.
"""
