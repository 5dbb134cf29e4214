"""Claims adjudication worker for drug policy MB2300."""

__version__ = "0.1.0"
