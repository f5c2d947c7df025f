import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def digits():
    """The default digits-LT benchmark on the CPU."""
    from cissl_kit.data import make_ssl_data

    return make_ssl_data("digits", device="cpu")
