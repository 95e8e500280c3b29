"""The torch engine: models, datasets, ANN training, SNN conversion and simulation.

config.py (each command's settings as a dataclass), device.py, checkpoint.py (the file between
train and simulate), data/ (one module per dataset + the registry), models/ (QCFS + one module
per architecture family + the registry), evaluate.py (ANN accuracy), train.py, snn.py (IF
neurons, conversion, simulation with real early exit), simulate.py (checkpoint -> run),
levels.py (the `ann` command), tensor_files.py (safe .pt reading for `import`), record.py
and frameworks/ (a user's own SNN -> run), synops.py (synaptic operations by forward hooks),
partial.py (the resumable work folder), distributed.py (several processes under torchrun).
Nothing outside this package imports torch; the CLI imports it only when a command runs.
"""
