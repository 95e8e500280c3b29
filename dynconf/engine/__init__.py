"""The torch engine: models, datasets, ANN training, SNN conversion and simulation.

config.py (each command's settings as a dataclass), device.py, checkpoint.py (the file between
train and simulate), data/ (one module per dataset + the registry; each states its
transform), models/ (QCFS + one module per architecture family + the registry), evaluate.py
(ANN accuracy), train.py and schedule.py, speed.py (time-boxed training), snn.py (IF neurons,
conversion, simulation with real early exit), levels.py (the `ann` command), tensor_files.py
(safe .pt reading for `import`), record.py (any SNN -> run, through an adapter of
frameworks/: SpikingJelly, snnTorch, dynconf's QCFS, a step/reset callable; encoders in
frameworks/encoders.py), simulate.py (a checkpoint -> run: record with the QCFS adapter),
writer.py (the one run writer: parts, resume, merge, lock, provenance), batches.py, partial.py
(the resumable work folder), synops.py (synaptic operations by forward hooks),
distributed.py (several processes under torchrun).
Nothing outside this package imports torch; the CLI imports it only when a command runs.
"""
