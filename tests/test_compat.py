"""Safe loading (torch's weights_only default) of mmengine checkpoints that hold empty numpy
arrays: protocol-2 pickles write an empty array's data as a call ``bytes()``."""
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner.checkpoint import _load_checkpoint, save_checkpoint

import ifkd_mm  # noqa: F401  allow-lists the checkpoint globals
from ifkd_mm.compat import empty_bytes


def test_checkpoint_with_empty_arrays_loads_through_mmengines_loader(tmp_path):
    # an empty buffer, e.g. a metric that was never logged, saved with the hub's state
    hub = MessageHub.get_instance('test_compat_empty_arrays',
                                  log_scalars={'val/empty': HistoryBuffer()},
                                  resumed_keys={'val/empty': True})
    hub.update_scalar('train/loss', 0.5)
    hub.update_scalar('train/loss', 0.25)
    model = torch.nn.Linear(3, 2)
    checkpoint = dict(
        meta=dict(epoch=1, empty=np.zeros((0, ), np.float32),
                  empty_boxes=np.zeros((0, 5), np.int64)),
        state_dict=model.state_dict(), message_hub=hub.state_dict())
    path = str(tmp_path / 'epoch_1.pth')
    save_checkpoint(checkpoint, path)

    loaded = _load_checkpoint(path, map_location='cpu')  # mmengine's resume / load_from path

    assert loaded['meta']['empty'].shape == (0, ) and loaded['meta']['empty'].dtype == np.float32
    assert loaded['meta']['empty_boxes'].shape == (0, 5)
    assert loaded['meta']['empty_boxes'].dtype == np.int64
    scalars = loaded['message_hub']['log_scalars']
    assert scalars['val/empty'].data[0].shape == (0, )
    np.testing.assert_array_equal(scalars['train/loss'].data[0], [0.5, 0.25])
    assert scalars['train/loss'].mean() == pytest.approx(0.375)
    torch.testing.assert_close(loaded['state_dict']['weight'], model.weight.detach())


class BytesOfLength:
    """Pickles as the call ``bytes(5)``, which the allow-list must refuse."""

    def __reduce__(self):
        return bytes, (5, )


def test_only_the_empty_bytes_call_is_allowed(tmp_path):
    assert empty_bytes() == b''
    path = str(tmp_path / 'other.pth')
    torch.save(dict(meta=BytesOfLength()), path)
    with pytest.raises(pickle.UnpicklingError, match=r'refusing bytes\(5,\)'):
        torch.load(path)
