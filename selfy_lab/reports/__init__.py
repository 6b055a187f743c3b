"""The reports: read the results store and say what it holds: the tables and the stated test's verdicts
(:mod:`.tables`), recipe tables (:mod:`.recipes`), figures (:mod:`.viz`), a sweep's report
(:mod:`.sweep_report`), the tables of ``results/README.md`` (:mod:`.readme_tables`) and the notebooks run
headless (:mod:`.notebooks`). The only layer that draws; it imports no study and no engine module."""
