"""Tests of the workbench TUI."""
