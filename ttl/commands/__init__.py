"""CLI sub-commands: each module defines ``register(subparsers)``; handlers return an exit code."""
