"""softlif: spiking deep networks with LIF neurons (Hunsberger & Eliasmith, arXiv 1510.08829).

Pipeline: data -> train (soft-LIF rate net) -> convert -> simulate (spiking) -> evaluate / energy.
"""

__version__ = "0.1.0"
