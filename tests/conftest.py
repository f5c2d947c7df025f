import pytest

from cissl_kit.utils import set_threads

set_threads()  # the kit's default rule (2 threads for the small models on a machine with 2 cores or more)


@pytest.fixture(scope="session")
def digits():
    """The default digits-LT benchmark on the CPU."""
    from cissl_kit.data import make_ssl_data

    return make_ssl_data("digits", device="cpu")
