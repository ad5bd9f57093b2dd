"""Torch building blocks. Importing this package imports torch; cellscape's top level never does."""
