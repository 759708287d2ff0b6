"""Distributed training and testing on CPUs (gloo), which mmengine 0.10.7 does not support.

mmengine's pytorch launcher calls ``torch.cuda.set_device`` unconditionally and wraps the model in
DDP with ``device_ids=[LOCAL_RANK]``, both of which fail without CUDA. On a machine without CUDA,
:func:`prepare_cpu_distributed` initialises the process group itself (mmengine then skips its own
initialisation) and selects :class:`CPUDistributedDataParallel` as the model wrapper.
"""
import os

import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """mmengine's DDP wrapper for a model on the CPU: ``device_ids`` must be left unset there."""

    def __init__(self, module: torch.nn.Module, device_ids=None, **kwargs) -> None:
        super().__init__(module=module, device_ids=None, **kwargs)


def prepare_cpu_distributed(cfg: Config) -> None:
    """Initialise a gloo process group for a ``pytorch``-launched run when CUDA is unavailable."""
    if cfg.get('launcher', 'none') != 'pytorch' or torch.cuda.is_available():
        return
    dist_cfg = cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    if dist_cfg.get('backend', 'nccl') != 'gloo':
        print_log(f"no CUDA: using the gloo backend instead of {dist_cfg.get('backend', 'nccl')}",
                  logger='current')
        dist_cfg['backend'] = 'gloo'
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend='gloo', rank=int(os.environ['RANK']),
                                      world_size=int(os.environ['WORLD_SIZE']))
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(type='CPUDistributedDataParallel')


def finish_distributed() -> None:
    """Wait for every rank, then destroy the process group before the interpreter exits.

    Left alive, a gloo process group's threads can be torn down during interpreter shutdown
    while still joinable, and that process aborts ("terminate called without an active
    exception"); torchrun then reports the whole run as failed after it has finished.
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.barrier()
        torch_dist.destroy_process_group()
