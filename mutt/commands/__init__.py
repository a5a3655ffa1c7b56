"""Operator commands of ``mutt``: one module per group, each with ``register(subparsers)``.

``mutt.cli`` stays the place that assembles the parser; a group here only
adds its own subcommand, so groups can be written, tested and reviewed apart.
"""
