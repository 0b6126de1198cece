"""Command modules: parse input, call the core, render output. No logic of their own."""
