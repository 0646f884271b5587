"""Thin dramatiq actors: decode the message, call a fitnus service, publish.

Import ``actors.setup`` and install the broker before importing any actor
module: dramatiq binds an actor to the broker current at declaration.
"""
