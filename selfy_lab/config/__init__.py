"""What a run is: the configuration dataclasses (:mod:`.run`), the names a field may take (:mod:`.vocabulary`,
the block registry :mod:`.blocks`), the small languages of offsets and windows (:mod:`.grammar`), presets and
their resolution (:mod:`.presets`), experiment files and their schema, and the configurations the tables name
(:mod:`.pairs`). No torch."""
