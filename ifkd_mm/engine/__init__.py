"""Runner-level helpers: distributed runs without CUDA."""
from .distributed import (CPUDistributedDataParallel, finish_distributed,
                          prepare_cpu_distributed)

__all__ = ['CPUDistributedDataParallel', 'finish_distributed', 'prepare_cpu_distributed']
