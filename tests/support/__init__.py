"""Helpers the tests share, one module per thing they provide (processes, factories, servers...)."""
