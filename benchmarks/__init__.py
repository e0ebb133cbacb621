"""decaylab's benchmarks: optimizer steps and the penalty's gradient mode against the memory-bandwidth floor.

Run ``python -m benchmarks.run --help``. Nothing here is imported by the library.
"""
