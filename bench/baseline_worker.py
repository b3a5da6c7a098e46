"""Times fast releases of another source tree (the "before"), on request, for bench_query.

`bench_query.py --baseline-tree DIR` starts this file as a child process whose imports
resolve inside DIR (`PYTHONPATH=DIR`: e.g. `git archive main | tar -x -C DIR`), so the
old and the new code run alternately, query by query, in one bench run. Protocol: one
JSON request a line on stdin, `{"query": name, "path": snapshot}`; one JSON answer a
line on stdout, `{"wall_ms": ..., "cpu_ms": ...}` of that tree's fast release alone
(planned before the clock starts, as bench_query times its own).

    PYTHONPATH=DIR python bench/baseline_worker.py DIR
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main() -> None:
    tree = Path(sys.argv[1]).resolve()
    sys.path.insert(0, str(tree / "bench"))
    sys.path.insert(0, str(tree))
    import bench_query as before  # the tree's own bench module, queries and snapshot

    import privacy

    assert privacy.__file__ is not None
    if not Path(privacy.__file__).resolve().is_relative_to(tree):
        raise SystemExit(f"privacy imported from {privacy.__file__}, not from {tree}")
    from node.native_memory import tune_native_allocator
    from privacy.query_route import QueryRoute
    from privacy.validate import validate_query

    tune_native_allocator()  # as bench_query does
    for line in sys.stdin:
        request = json.loads(line)
        query = validate_query(before.QUERIES[request["query"]](), before.SCHEMA, before.LIMITS)
        release = before._releaser(query, Path(request["path"]), QueryRoute.FAST)
        wall, cpu = time.perf_counter(), time.process_time()
        release()
        answer = {
            "wall_ms": (time.perf_counter() - wall) * 1e3,
            "cpu_ms": (time.process_time() - cpu) * 1e3,
        }
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
