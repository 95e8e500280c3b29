"""Record your own SpikingJelly, snnTorch or step/reset network into a run (the notebook's
import path; the work is done in dynconf/engine/record.py)."""

from dynconf.engine.record import record_run

__all__ = ["record_run"]
