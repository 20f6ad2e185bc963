"""neurosim: declare a microcircuit once as Brian2 equations, run it on many targets."""
__version__ = "0.1.0"
