"""customer-r1: learn to simulate how a particular person shops online, step by step."""

__version__ = "0.1.0"
