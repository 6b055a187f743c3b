"""The results store: run folders, sweep records and the tidy CSVs, and what "finished" means. The only code
that knows the file names and the layout of ``results/`` and of a run directory."""
