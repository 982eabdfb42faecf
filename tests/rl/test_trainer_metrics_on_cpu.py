"""The trainer's reward metrics read each rollout's reward_extra_info from transfer_queue's ``extra_fields``
column. On the GPU run of 2026-12-02 (veRL 0.9.1) that column came back as tensordict's LinkedList, not a
numpy array, and step 1 crashed after its checkpoint; both forms must give the same infos."""
import numpy as np
from tensordict import NonTensorData, NonTensorStack, TensorDict

from rl.trainer import reward_infos

ROWS = [{"reward_extra_info": {"r_c": 1.0, "compiled": 1.0}}, {"reward_extra_info": {"r_c": 0.0}}, None]


def test_reward_infos_from_a_tensordict_non_tensor_column():
    td = TensorDict({"extra_fields": NonTensorStack(*[NonTensorData(r) for r in ROWS])},
                    batch_size=[len(ROWS)])
    column = td["extra_fields"]
    assert not hasattr(column, "tolist")  # the form that broke .tolist()
    assert reward_infos(column) == [{"r_c": 1.0, "compiled": 1.0}, {"r_c": 0.0}, {}]


def test_reward_infos_from_a_numpy_object_array():
    column = np.empty(len(ROWS), dtype=object)
    column[:] = ROWS
    assert reward_infos(column) == [{"r_c": 1.0, "compiled": 1.0}, {"r_c": 0.0}, {}]
