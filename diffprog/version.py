"""diffprog's version, where every stage can read it (generated code's header, the command line)."""
__version__ = "0.1.0"
