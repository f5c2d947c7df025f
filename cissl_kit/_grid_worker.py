"""A benchmark worker process: ``python -m cissl_kit._grid_worker``, started by ``run_grid(jobs=N)``.

It reads pickled cells on stdin and writes pickled rows on stdout; anything else it would print
goes to stderr.
"""

import os
import sys

if __name__ == "__main__":
    messages_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints (Python or C) go to stderr
    from cissl_kit.benchmark import serve_worker

    serve_worker(sys.stdin.buffer, messages_out)
