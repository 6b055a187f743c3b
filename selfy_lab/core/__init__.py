"""The bottom layer: errors, dataclass helpers, the paper's numbers, metrics, the stated test, text files,
the package version and process settings (device, threads, progress). Imports nothing else of the package."""
