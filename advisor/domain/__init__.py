"""The project's vocabulary: immutable values, no I/O."""
