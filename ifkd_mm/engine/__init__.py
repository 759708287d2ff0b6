"""Runner-level helpers: distributed runs without CUDA."""
from .distributed import CPUDistributedDataParallel, prepare_cpu_distributed

__all__ = ['CPUDistributedDataParallel', 'prepare_cpu_distributed']
