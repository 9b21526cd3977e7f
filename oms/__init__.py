"""The core of the order pipeline: settings, pure domain rules, storage and the `oms` command."""
