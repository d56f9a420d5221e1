"""hkjax: energy-first associative memories binding threshold and oscillatory units.

Fanaskov & Oseledets, "Binding threshold units with artificial oscillatory neurons",
arXiv 2505.03648. Layers and synapses are Equinox modules composed into one energy; its
Lyapunov flow is solved with Diffrax.
"""

from . import _xla

_xla.apply()  # before any JAX computation: see hkjax/_xla.py

from . import checkpoint, config, data, graphs, interactions, lagrangians, layers, runs, sweep, synapses, tasks, train
from .config import Config
from .layers import OscillatorLayer, ThresholdLayer
from .network import COUPLINGS, Network, hierarchical_hopfield, hopfield, hopfield_kuramoto, kuramoto
from .relax import ADJOINTS, Solution, relax, relax_batch
from .tasks import Addition, Classification, MemoryEditing
from .train import FitResult, evaluate, fit, make_optimizer

enable_compile_cache = _xla.enable_compile_cache

__version__ = "0.3.0"

__all__ = [
    "checkpoint",
    "config",
    "data",
    "tasks",
    "train",
    "graphs",
    "plotting",
    "sweep",
    "runs",
    "interactions",
    "lagrangians",
    "synapses",
    "layers",
    "Network",
    "ThresholdLayer",
    "OscillatorLayer",
    "hopfield",
    "hierarchical_hopfield",
    "kuramoto",
    "hopfield_kuramoto",
    "relax",
    "relax_batch",
    "Solution",
    "COUPLINGS",
    "ADJOINTS",
    "Config",
    "Classification",
    "Addition",
    "MemoryEditing",
    "fit",
    "evaluate",
    "make_optimizer",
    "FitResult",
    "enable_compile_cache",
]


def __getattr__(name):
    # matplotlib is imported only when figures are asked for.
    if name == "plotting":
        import importlib

        return importlib.import_module(".plotting", __name__)
    raise AttributeError(f"module 'hkjax' has no attribute {name!r}")
