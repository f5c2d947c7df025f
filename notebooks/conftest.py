"""pytest settings for the notebooks (collected by nbval)."""

# nbval waits only 5 s for each output message once a cell has finished; on a busy shared CPU the
# kernel's output can lag longer than that (many progress-bar updates), which fails a cell that ran
# fine. Allow a minute. Cells themselves keep nbval's own --nbval-cell-timeout.
OUTPUT_TIMEOUT_SECONDS = 60


def pytest_collection_modifyitems(items):
    for item in items:
        if hasattr(item, "output_timeout"):
            item.output_timeout = OUTPUT_TIMEOUT_SECONDS
