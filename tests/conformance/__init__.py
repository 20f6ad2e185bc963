"""The conformance suite: plain Brian2 scripts of published models and their harness."""
