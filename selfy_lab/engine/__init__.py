"""The engine: one run's model and checkpoints (:mod:`.checkpoint`, pretrained weights :mod:`.weights`), its
training (:mod:`.train`), its evaluation (:mod:`.evaluate`) and torchrun's processes (:mod:`.distributed`).
Returns data and writes a run's files; draws nothing."""
