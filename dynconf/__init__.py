"""dynconf: an interactive lab for Dynamic Confidence in spiking neural networks.

The library has no Streamlit dependency so that it works from a notebook. Heavy modules
(torch) are imported only by the modules that simulate or train networks.
"""

__version__ = "0.1.0"
