"""Sub-commands of `oms` that grew past a few lines, one module per area.

Each module offers `add_commands(commands)`, which `oms.cli` calls with its sub-parser set.
"""
