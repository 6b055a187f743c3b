"""The studies: sweeps (:mod:`.ablate`, one run :mod:`.runner`, on a cluster :mod:`.cluster`), robustness to
corruptions, explanations (CAM and STSS maps), predictions on a user's videos, exported models, models by name
(:mod:`.zoo`) and the benchmarks (:mod:`.bench`). They compute and write result files; the reports draw."""
